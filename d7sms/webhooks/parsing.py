"""Reading what D7 sends us: the rules each parameter must meet, and the parsers that apply them.

:data:`DLR_RULES` and :data:`CALLBACK_RULES` are the one statement of what a call may carry:
the parsers here enforce them, and :mod:`d7sms.webhooks.schema` publishes them as the OpenAPI
schema. Everything here is pure: it turns a request's bytes into plain values or raises
:class:`Malformed` / :class:`TooLarge` with a text that names the problem, so the receivers can
store the raw parameters whatever happens here.

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

from d7sms import conf

#: Receipt states a level-2 report may carry (SMPP ``stat:`` abbreviations).
RECEIPT_STATES = ("ACCEPTD", "DELETED", "DELIVRD", "ENROUTE", "EXPIRED", "REJECTD", "UNDELIV", "UNKNOWN")
#: Longest value kept of any parameter in a stored call.
MAX_STORED_VALUE = 2000


@dataclass(frozen=True)
class Rule:
    """What one parameter may hold: ``pattern`` (matched in full, after ``upper`` when set),
    ``choices``, ``max_length``, and whether it is ``required``. ``mismatch`` is the error
    text for a value that does not match ``pattern``."""

    name: str
    description: str
    required: bool = False
    max_length: int = 64
    pattern: str | None = None
    choices: tuple[str, ...] | None = None
    upper: bool = False
    mismatch: str = ""

    def read(self, params):
        """This parameter's value from ``params``, stripped; raises :class:`Malformed` unless it fits."""
        value = last(params.get(self.name, "")).strip()
        if self.upper:
            value = value.upper()
        if not value:
            if self.required:
                raise Malformed(f"missing parameter '{self.name}'")
            return value
        if len(value) > self.max_length:
            raise Malformed(f"parameter '{self.name}' is longer than {self.max_length} characters")
        if self.choices is not None and value not in self.choices:
            raise Malformed(f"parameter '{self.name}' must be {' or '.join(self.choices)}")
        if self.pattern is not None and not _compiled(self.pattern).fullmatch(value):
            raise Malformed(self.mismatch or f"parameter '{self.name}' has an unexpected form")
        return value


_DATE = r"[0-9]{10}([0-9]{2})?"
_ESME = r"ESME_[A-Z0-9_]{1,35}"
_SUCCESS = r'Success\s*"([\x21\x23-\x7e]{1,64})'

_STATUS = {
    "name": "message_status",
    "description": f"Level 1: an SMPP command status (ESME_*). Level 2: one of {', '.join(RECEIPT_STATES)}.",
    "required": True,
    "max_length": 40,
    "upper": True,
}
# What a status must be at each level; the rule in DLR_RULES (and the schema) admits either.
_STATUS_AT_LEVEL = {
    "1": Rule(**_STATUS, pattern=_ESME, mismatch="a level-1 'message_status' must be an ESME_* command status"),
    "2": Rule(
        **_STATUS,
        pattern="|".join(RECEIPT_STATES),
        mismatch=f"unknown level-2 'message_status' (expected one of {', '.join(RECEIPT_STATES)})",
    ),
}

DLR_RULES = (
    Rule(
        "id", "D7's message id.", required=True, pattern=r"[\x21-\x7e]{1,64}",
        mismatch="parameter 'id' holds characters a message id cannot have",
    ),
    Rule("level", "1: SMSC level, 2: terminal level.", required=True, max_length=2, choices=("1", "2")),
    Rule(**_STATUS, pattern=f"{_ESME}|{'|'.join(RECEIPT_STATES)}"),
    Rule("id_smsc", "The SMSC's id (level 2)."),
    Rule("sub", "Parts submitted (level 2).", max_length=MAX_STORED_VALUE),
    Rule("dlvrd", "Parts delivered (level 2).", max_length=MAX_STORED_VALUE),
    Rule("subdate", "Submit date, YYMMDDhhmm.", max_length=12, pattern=_DATE,
         mismatch="parameter 'subdate' is not a YYMMDDhhmm date"),
    Rule("donedate", "Done date, YYMMDDhhmm.", max_length=12, pattern=_DATE,
         mismatch="parameter 'donedate' is not a YYMMDDhhmm date"),
    Rule("err", "Error code of the receipt (level 2).", max_length=10),
    Rule("text", "The first 20 characters of the message (level 2).", max_length=MAX_STORED_VALUE),
)
_BATCH_COMMON = (
    Rule("batchId", "D7's batch id."),
    Rule(
        "to", "The destination.", required=True, max_length=32, pattern=r"[\s\S]*[0-9][\s\S]*",
        mismatch="parameter 'to' holds no phone number",
    ),
)
CALLBACK_RULES = (
    *_BATCH_COMMON,
    Rule("status", "1: the message was submitted.", max_length=2, choices=("0", "1")),
    Rule(
        "statusText",
        'Success "<message id>": the id D7 gave the message.',
        required=True,
        max_length=MAX_STORED_VALUE,
        pattern=rf"[\s\S]*{_SUCCESS}[\s\S]*",
        mismatch="""parameter 'statusText' carries no message id (expected Success "<id>")""",
    ),
)
ERRBACK_RULES = (
    *_BATCH_COMMON,
    Rule("status", "0: the message could not be submitted.", max_length=2, choices=("0", "1")),
    Rule("statusText", "Why the message could not be submitted.", max_length=MAX_STORED_VALUE),
)
RULES = {"dlr": DLR_RULES, "callback": CALLBACK_RULES, "errback": ERRBACK_RULES}
_DLR = {rule.name: rule for rule in DLR_RULES}
_DATE_PARTS = re.compile(r"([0-9]{2})([0-9]{2})([0-9]{2})([0-9]{2})([0-9]{2})([0-9]{2})?")
_compiled = re.compile  # re caches compiled patterns itself


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


def last(value):
    """The value applied for a parameter: the last one when the key was repeated."""
    return value[-1] if isinstance(value, list) else value


def to_dict(pairs):
    """Parameters as stored: a repeated key keeps all its values, in order, as a list."""
    raw = {}
    for key, value in pairs:
        key, value = clean(key)[:200], clean(value)[:MAX_STORED_VALUE]
        if key in raw:
            held = raw[key]
            raw[key] = [*held, value] if isinstance(held, list) else [held, value]
        else:
            raw[key] = value
    return raw


def parse_form(data, what):
    """The parameters of a urlencoded query string or body (bytes), decoded as UTF-8 as Django does."""
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
    return to_dict(pairs)


def query_params(meta):
    """The parameters of a request's query string (from its ``META``), checked against the size limit."""
    limit = conf.get("WEBHOOK_MAX_BODY")
    query = meta.get("QUERY_STRING", "")
    if len(query) > limit:
        raise TooLarge(f"query string longer than {limit} bytes", 414, {"_query": clean(query[:limit])})
    # WSGI hands the query string over as latin-1 text: its bytes are the URL's.
    return parse_form(query.encode("iso-8859-1", errors="replace"), "query string")


def receipt_date(value, name):
    """Parse a receipt date ``YYMMDDhhmm[ss]`` to an aware UTC datetime (None when empty)."""
    value = _DLR[name].read({name: value})
    if not value:
        return None
    yy, mo, dd, hh, mi, ss = (int(g) if g else 0 for g in _DATE_PARTS.fullmatch(value).groups())
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
    d7_id = _DLR["id"].read(params)
    level = _DLR["level"].read(params)
    status = _STATUS_AT_LEVEL[level].read(params)
    return Report(
        d7_message_id=d7_id,
        level=int(level),
        message_status=status,
        id_smsc=_DLR["id_smsc"].read(params),
        err=_DLR["err"].read(params),
        submitted_date=receipt_date(last(params.get("subdate", "")), "subdate"),
        done_date=receipt_date(last(params.get("donedate", "")), "donedate"),
    )


def digits_of(number):
    """The digits of a phone number, dropping ``+``, spaces and punctuation."""
    return "".join(ch for ch in number if ch.isdigit() and ch.isascii())


def parse_callback(params, kind):
    """Validate a batch ``kind`` ("callback" or "errback") call; return a :class:`Callback`."""
    read = {rule.name: rule.read(params) for rule in RULES[kind]}
    status = read["status"]
    callback = Callback(
        to=read["to"],
        digits=digits_of(read["to"]),
        status=int(status) if status else (1 if kind == "callback" else 0),
        status_text=read["statusText"],
        d7_batch_id=read["batchId"],
    )
    if kind == "callback":
        callback.d7_message_id = _compiled(_SUCCESS).search(read["statusText"]).group(1)
    return callback
