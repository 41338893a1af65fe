"""Reading what D7 sends us: raw parameters, size limits, DLR and batch callback fields.

Everything here is pure: it turns a request's bytes into plain values or raises
:class:`Malformed` / :class:`TooLarge` with a text that names the problem. Nothing touches the
database, so the views can store the raw parameters whatever happens here.

Receipt dates (``subdate``, ``donedate``) are ``YYMMDDhhmm`` (sometimes with seconds) in the
SMSC's own clock, which the call does not name. They are read in ``D7SMS["DLR_TIME_ZONE"]``
(default UTC) and returned as aware datetimes in UTC.
"""

import datetime
import re
import zoneinfo
from dataclasses import dataclass
from urllib.parse import parse_qsl

from django.conf import settings
from django.http.request import RawPostDataException

from d7sms import conf

#: Receipt states a level-2 report may carry (SMPP ``stat:`` abbreviations).
RECEIPT_STATES = frozenset({"DELIVRD", "EXPIRED", "DELETED", "UNDELIV", "ACCEPTD", "UNKNOWN", "REJECTD", "ENROUTE"})

_ESME = re.compile(r"^ESME_[A-Z0-9_]{1,35}$")
_PRINTABLE_ID = re.compile(r"^[\x21-\x7e]{1,64}$")
_SUCCESS_ID = re.compile(r'Success\s*"([\x21\x23-\x7e]{1,64})')
_DATE = re.compile(r"^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})?$")
_MAX_STORED_VALUE = 2000


class Malformed(ValueError):
    """The call is authenticated but its parameters cannot be applied; the text says why."""


class TooLarge(ValueError):
    """The call's query string or body exceeds ``WEBHOOK_MAX_BODY``; ``raw`` holds its start."""

    def __init__(self, text, status, raw):
        super().__init__(text)
        self.status = status
        self.raw = raw


@dataclass(slots=True)
class Report:
    """A DLR's fields, validated."""

    d7_message_id: str
    level: int
    message_status: str
    id_smsc: str = ""
    err: str = ""
    submitted_date: datetime.datetime | None = None
    done_date: datetime.datetime | None = None


@dataclass(slots=True)
class Callback:
    """A batch callback's or errback's fields, validated."""

    to: str
    digits: str
    status: int
    status_text: str
    d7_batch_id: str = ""
    d7_message_id: str = ""


def clean(value):
    """``value`` as text PostgreSQL accepts: NUL characters are replaced."""
    return value.replace("\x00", "\ufffd") if "\x00" in value else value


def _to_dict(pairs):
    # A repeated key keeps all its values in the raw record; the last one is the one applied.
    raw = {}
    for key, value in pairs:
        key, value = clean(key)[:200], clean(value)[:_MAX_STORED_VALUE]
        if key in raw:
            held = raw[key]
            raw[key] = [*held, value] if isinstance(held, list) else [held, value]
        else:
            raw[key] = value
    return raw


def _parse(data, what):
    """Pairs of a urlencoded query string or body (bytes), decoded as UTF-8 like Django does."""
    if not data:
        return {}
    # parse_qsl directly: a QueryDict costs more than the rest of reading the call together.
    try:
        pairs = parse_qsl(
            data.decode("utf-8", errors="replace"),
            keep_blank_values=True,
            max_num_fields=settings.DATA_UPLOAD_MAX_NUMBER_FIELDS,
            errors="replace",
        )
    except ValueError:
        raise Malformed(f"too many parameters in the {what}") from None
    return _to_dict(pairs)


def read_params(request):
    """Return the call's parameters as a dict: the query string, then the form body over it.

    Raises :class:`TooLarge` when the query string or body is longer than
    ``WEBHOOK_MAX_BODY`` bytes, and :class:`Malformed` when it cannot be decoded.
    """
    limit = conf.get("WEBHOOK_MAX_BODY")
    query = request.META.get("QUERY_STRING", "")
    if len(query) > limit:
        raise TooLarge(f"query string longer than {limit} bytes", 414, {"_query": clean(query[:limit])})
    # WSGI hands the query string over as latin-1 text: its bytes are the URL's.
    params = _parse(query.encode("iso-8859-1", errors="replace"), "query string")
    if request.method != "POST":
        return params
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise Malformed("Content-Length is not a number") from None
    if length > limit:
        head = request.read(limit)
        params["_body"] = clean(head.decode("utf-8", errors="replace"))
        raise TooLarge(f"body longer than {limit} bytes", 413, params)
    if request.content_type == "multipart/form-data":
        try:
            params.update(_to_dict((k, v) for k, values in request.POST.lists() for v in values))
        except Exception:  # noqa: BLE001  (Django's multipart parser has many ways to fail)
            raise Malformed("the multipart body cannot be read") from None
        return params
    try:
        body = request.body
    except RawPostDataException:
        body = b""
    if body:
        # Jasmin posts a form; it is read as one whatever Content-Type says, or says not.
        params.update(_parse(body, "body"))
    return params


def last(value):
    """The value applied for a parameter: the last one when the key was repeated."""
    return value[-1] if isinstance(value, list) else value


def _field(params, name, *, required=False, max_length=64):
    value = last(params.get(name, "")).strip()
    if required and not value:
        raise Malformed(f"missing parameter '{name}'")
    if len(value) > max_length:
        raise Malformed(f"parameter '{name}' is longer than {max_length} characters")
    return value


def receipt_date(value, name):
    """Parse a receipt date ``YYMMDDhhmm[ss]`` to an aware UTC datetime (None when empty)."""
    value = value.strip()
    if not value:
        return None
    match = _DATE.match(value)
    if not match:
        raise Malformed(f"parameter '{name}' is not a YYMMDDhhmm date")
    yy, mo, dd, hh, mi, ss = (int(g) if g else 0 for g in match.groups())
    try:
        local = datetime.datetime(2000 + yy, mo, dd, hh, mi, ss, tzinfo=_receipt_zone())
    except ValueError:
        raise Malformed(f"parameter '{name}' is not a valid date") from None
    return local.astimezone(datetime.timezone.utc)


def _receipt_zone():
    name = conf.get("DLR_TIME_ZONE")
    return datetime.timezone.utc if name in (None, "", "UTC") else zoneinfo.ZoneInfo(name)


def parse_dlr(params):
    """Validate a DLR's parameters; return a :class:`Report` or raise :class:`Malformed`."""
    d7_id = _field(params, "id", required=True)
    if not _PRINTABLE_ID.match(d7_id):
        raise Malformed("parameter 'id' holds characters a message id cannot have")
    level = _field(params, "level", required=True, max_length=2)
    if level not in ("1", "2"):
        raise Malformed("parameter 'level' must be 1 or 2")
    status = _field(params, "message_status", required=True, max_length=40).upper()
    if level == "1" and not _ESME.match(status):
        raise Malformed("a level-1 'message_status' must be an ESME_* command status")
    if level == "2" and status not in RECEIPT_STATES:
        raise Malformed(f"unknown level-2 'message_status' (expected one of {', '.join(sorted(RECEIPT_STATES))})")
    return Report(
        d7_message_id=d7_id,
        level=int(level),
        message_status=status,
        id_smsc=_field(params, "id_smsc"),
        err=_field(params, "err", max_length=10),
        submitted_date=receipt_date(last(params.get("subdate", "")), "subdate"),
        done_date=receipt_date(last(params.get("donedate", "")), "donedate"),
    )


def digits_of(number):
    """The digits of a phone number, dropping ``+``, spaces and punctuation."""
    return "".join(ch for ch in number if ch.isdigit() and ch.isascii())


def parse_callback(params, kind):
    """Validate a batch ``kind`` ("callback" or "errback") call; return a :class:`Callback`."""
    to = _field(params, "to", required=True, max_length=32)
    digits = digits_of(to)
    if not digits:
        raise Malformed("parameter 'to' holds no phone number")
    status = _field(params, "status", max_length=2)
    if status and status not in ("0", "1"):
        raise Malformed("parameter 'status' must be 0 or 1")
    text = last(params.get("statusText", "")).strip()[:_MAX_STORED_VALUE]
    callback = Callback(
        to=to,
        digits=digits,
        status=int(status) if status else (1 if kind == "callback" else 0),
        status_text=text,
        d7_batch_id=_field(params, "batchId"),
    )
    if kind == "callback":
        match = _SUCCESS_ID.search(text)
        if not match:
            raise Malformed("parameter 'statusText' carries no message id (expected Success \"<id>\")")
        callback.d7_message_id = match.group(1)
    return callback
