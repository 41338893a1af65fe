"""A compose draft carried from the preview to the confirm step, so nothing is stored before.

The draft (the typed fields, the pasted text and the checked numbers) travels in the
preview form as one signed, compressed token: tampering breaks the signature, and the
numbers sent are exactly the numbers previewed. A draft is bound to the user who made it
and expires after :data:`MAX_AGE` seconds.
"""

import base64
import itertools
import json
import zlib

from django.core import signing

MAX_AGE = 24 * 3600
_SALT = "d7sms.admin.compose"
_SLICE = 1000


class DraftError(ValueError):
    """The token is missing, altered, expired, or belongs to another user."""


def pack(user, fields, numbers, summary):
    """Return a token holding ``fields`` (JSON-able), ``numbers`` (an iterable) and ``summary``.

    Numbers are fed to the compressor a slice at a time, so no second full copy of the list is built.
    """
    compressor = zlib.compressobj(6)
    head = json.dumps({"fields": fields, "summary": summary}, separators=(",", ":")).encode()
    chunks = [compressor.compress(head + b"\n")]
    numbers = iter(numbers)
    while True:
        slice_ = list(itertools.islice(numbers, _SLICE))
        if not slice_:
            break
        chunks.append(compressor.compress(("\n".join(slice_) + "\n").encode("ascii")))
    chunks.append(compressor.flush())
    body = base64.urlsafe_b64encode(b"".join(chunks)).decode("ascii")
    return _signer(user).sign(body)


def unpack(user, token):
    """Return ``(fields, numbers, summary)`` from a token made by :func:`pack` for ``user``."""
    if not token:
        raise DraftError("No draft.")
    try:
        body = _signer(user).unsign(token, max_age=MAX_AGE)
    except signing.SignatureExpired:
        raise DraftError("This preview has expired; check the list again.") from None
    except signing.BadSignature:
        raise DraftError("This preview could not be read; check the list again.") from None
    text = zlib.decompress(base64.urlsafe_b64decode(body)).decode("utf-8")
    head, _sep, rest = text.partition("\n")
    data = json.loads(head)
    numbers = rest.split("\n")
    if numbers and not numbers[-1]:
        numbers.pop()
    return data["fields"], numbers, data["summary"]


def _signer(user):
    return signing.TimestampSigner(salt=f"{_SALT}.{user.pk}")
