"""Uploaded recipient lists, read once and kept (:class:`~d7sms.models.ComposeUpload`) between
the compose, preview and confirm steps.

The page carries only a signed reference, bound to the user: the rows cannot be altered on
their way, another user's upload cannot be named, and an expired one is refused. The rows are
stored compressed, as JSON arrays of up to :data:`_SLICE` ``[line, cells]`` rows per line.
"""

import itertools
import json
import zlib

from django.core import signing

from d7sms import encoding
from d7sms.admin.drafts import DraftError
from d7sms.admin.recipient_input import ListError
from d7sms.admin.spreadsheets import is_number, read_table
from d7sms.models import ComposeUpload

_SALT = "d7sms.admin.uploads"
_SLICE = 5000
_SAMPLE_ROWS = 20


def store(user, upload, region):
    """Read ``upload`` (CSV or .xlsx) and keep it for ``user``; return the ComposeUpload.

    Each column is described by ``name`` and ``numbers``: how many of the first rows hold a
    valid phone number there (to guess the phone column). ``samples`` keeps the few real rows
    that give the longest messages whatever fields the text uses (for each column, the row with
    its longest value, and the one with its longest value outside GSM-7), for the live counter.
    """
    table = read_table(upload, region)
    size = len(table.columns)
    longest, longest_ucs2 = [(0, None)] * size, [(0, None)] * size
    numbers = [0] * size
    compressor = zlib.compressobj(6)
    chunks, count = [], 0
    rows = iter(table.rows)
    while part := list(itertools.islice(rows, _SLICE)):
        for line, cells in part:
            for i, cell in enumerate(cells):
                n = len(cell)
                if n > longest[i][0]:
                    longest[i] = (n, cells)
                if n > longest_ucs2[i][0] and not encoding.is_gsm7(cell):
                    longest_ucs2[i] = (n, cells)
            if count < _SAMPLE_ROWS:
                for i, cell in enumerate(cells):
                    numbers[i] += is_number(cell, region)
            count += 1
        chunks.append(compressor.compress(json.dumps(part, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"))
    if not count:
        raise ListError("The file holds a header but no rows.")
    chunks.append(compressor.flush())
    samples = list({id(r): r for _n, r in longest + longest_ucs2 if r is not None}.values())
    return ComposeUpload.objects.create(
        created_by=user, name=upload.name[:255], row_count=count, data=b"".join(chunks), header=table.header,
        columns=[{"name": name, "numbers": numbers[i]} for i, name in enumerate(table.columns)], samples=samples,
    )


def rows(kept):
    """Yield the ``(line, cells)`` rows of a ComposeUpload, in file order."""
    for line in zlib.decompress(bytes(kept.data)).splitlines():
        yield from json.loads(line)


def phone_column(kept):
    """The name of the column most likely to hold the phone numbers (the leftmost of the best)."""
    best = max(kept.columns, key=lambda c: c["numbers"])
    return best["name"]


def reference(user, kept):
    """A token naming ``kept`` that only ``user`` can use."""
    return signing.TimestampSigner(salt=f"{_SALT}.{user.pk}").sign(str(kept.pk))


def find(user, token):
    """The ComposeUpload a :func:`reference` token names, or ``DraftError``."""
    try:
        pk = signing.TimestampSigner(salt=f"{_SALT}.{user.pk}").unsign(token or "", max_age=ComposeUpload.MAX_AGE)
    except signing.BadSignature:
        raise DraftError("This uploaded list could not be read; upload the file again.") from None
    kept = ComposeUpload.objects.filter(pk=int(pk), created_by=user).first()
    if kept is None:
        raise DraftError("This uploaded list has expired; upload the file again.")
    return kept
