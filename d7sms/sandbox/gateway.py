"""The sending core behind the REST layer: validate, authenticate, route, charge, accept.

Mirrors the order and texts of the gateway's own http api, which the REST API calls once per
message (for /secure/send directly, for batches from a background worker).
"""

import itertools
import re
import time
import uuid
from decimal import Decimal

from . import parts
from .outcomes import level1_params, level2_params, outcome_for
from .records import Message

NO_CREDIT = "Cannot charge submit_sm, check RouterPB log file for details"
#: What the sandbox charges per part unless told otherwise (``--price-per-part``).
DEFAULT_PRICE_PER_PART = Decimal("0.01")

# (name, pattern or None, mandatory) in the order the gateway checks them: the first failure wins.
_FIELDS = (
    ("to", re.compile(r"\+?\d+"), True),
    ("from", None, False),
    ("coding", re.compile(r"[0-9]|1[0-4]"), False),
    ("priority", re.compile(r"[0-3]"), False),
    ("sdt", re.compile(r"\d{12}\d\d{2}[-+R]"), False),
    ("validity-period", re.compile(r"\d+"), False),
    ("dlr", re.compile(r"yes|no"), False),
    ("dlr-url", re.compile(r"https?://.*", re.DOTALL), False),
    ("dlr-level", re.compile(r"[1-3]"), False),
    ("dlr-method", re.compile(r"GET|POST"), False),
    ("tags", re.compile(r"[-a-zA-Z0-9,]*"), False),
)
# Credentials may appear among the params; they are known, and ignored in favour of Basic auth.
_KNOWN = {name for name, _p, _m in _FIELDS} | {"content", "hex-content", "username", "password"}


class Rejected(Exception):
    """The gateway refused a message: HTTP ``status`` and the error ``text``."""

    def __init__(self, status, text):
        super().__init__(text)
        self.status = status
        self.text = text


def _as_text(value):
    if isinstance(value, bool):
        return "True" if value else "False"
    return value if isinstance(value, str) else str(value)


def normalise(params):
    """Params as the gateway sees them: ``_`` in keys becomes ``-``, values become text.

    A list stands for repeated values of which the gateway reads the first; None is dropped
    (it never reaches the wire).
    """
    out = {}
    for key, value in params.items():
        if isinstance(value, list):
            if not value:
                continue
            value = value[0]
        if value is None:
            continue
        out[key.replace("_", "-")] = _as_text(value)
    return out


def validate(params):
    """Fill the gateway's defaults into normalised ``params`` and check them; raises Rejected."""
    params.setdefault("coding", "0")
    if "dlr" not in params and ("dlr-url" in params or "dlr-level" in params):
        params["dlr"] = "yes"
    params.setdefault("dlr", "no")
    if params["dlr"] == "yes":
        params.setdefault("dlr-level", "1")
        params.setdefault("dlr-method", "POST")
    if "dlr-method" in params:
        params["dlr-method"] = params["dlr-method"].upper()
    for name, pattern, mandatory in _FIELDS:
        value = params.get(name)
        if value is None:
            if mandatory:
                raise Rejected(400, f"Mandatory argument [{name}] is not found.")
        elif pattern is not None and not pattern.fullmatch(value):
            raise Rejected(400, f"Argument [{name}] has an invalid value: [{value}].")
    for name in params:
        if name not in _KNOWN:
            raise Rejected(400, f"Argument [{name}] is unknown.")
    has_content, has_hex = "content" in params, "hex-content" in params
    if not has_content and not has_hex:
        raise Rejected(400, "content or hex-content not present.")
    if has_content and has_hex:
        raise Rejected(400, "content and hex-content cannot be used both in same request.")
    return params


class Gateway:
    """Accepts messages for the sandbox: charges accounts, stores messages, schedules DLRs."""

    def __init__(self, accounts, store, thrower, price_per_part=DEFAULT_PRICE_PER_PART, dlr_delay=0.2):
        self.accounts = accounts
        self.store = store
        self.thrower = thrower
        self.price_per_part = Decimal(price_per_part)
        self.dlr_delay = dlr_delay
        self._smsc_ids = itertools.count(1)

    def price(self, params):
        """(parts, amount) that validated ``params`` would cost; raises Rejected on bad hex."""
        coding = int(params["coding"])
        if "hex-content" in params:
            try:
                raw = parts.decode_hex(params["hex-content"])
            except parts.HexContentError as exc:
                raise Rejected(500, f"Unknown error: {exc}") from exc
            n = parts.count_parts(coding, raw=raw)
        else:
            n = parts.count_parts(coding, content=params["content"])
        return n, self.price_per_part * n

    def submit(self, username, password, params, batch_id=None, send_at=None):
        """Accept one message given as raw request ``params``; the Message, or raises Rejected."""
        params = validate(normalise(params))
        n_parts, amount = self.price(params)
        if not self.accounts.authenticate(username, password):
            raise Rejected(403, f"Authentication failure for username:{username}")
        outcome = outcome_for(params["to"])
        if not outcome.routed:
            raise Rejected(412, "No route found")
        if not self.accounts.charge(username, amount, n_parts):
            raise Rejected(403, NO_CREDIT)
        message = self._accept(username, params, outcome, n_parts, amount, batch_id, send_at)
        self.store.add_message(message)
        self._schedule_dlrs(message, batch_id)
        return message

    def _accept(self, username, params, outcome, n_parts, amount, batch_id, send_at):
        now = time.time()
        coding = int(params["coding"])
        hex_content = params.get("hex-content")
        if hex_content is None:
            text = params["content"]
        else:
            raw = bytes.fromhex(hex_content)
            text = raw.decode("utf-16-be" if coding == 8 else "latin-1", "replace")
        dlr = params["dlr"] == "yes" and "dlr-url" in params
        return Message(
            id=str(uuid.uuid4()), to=params["to"], sender=params.get("from"),
            content=params.get("content"), hex_content=hex_content, text=text, coding=coding,
            parts=n_parts, charged=amount, batch_id=batch_id, dlr=dlr,
            dlr_url=params.get("dlr-url") if dlr else None,
            dlr_level=int(params["dlr-level"]) if dlr else 0,
            dlr_method=params.get("dlr-method") if dlr else None,
            user=username, accepted_at=now, send_at=send_at or now, outcome=outcome,
            id_smsc=str(next(self._smsc_ids)), priority=params.get("priority"),
            validity_period=params.get("validity-period"), sdt=params.get("sdt"),
            tags=params.get("tags"),
        )

    def _schedule_dlrs(self, message, batch_id):
        if not message.dlr:
            return
        level = message.dlr_level
        if level in (1, 3):
            self.thrower.dlr(self.dlr_delay, message.dlr_url, message.dlr_method,
                             level1_params(message), batch_id)
        if level in (2, 3) and message.outcome.receipt is not None:
            # The terminal report comes later than the SMSC's, as on a real network.
            delay = 2 * self.dlr_delay
            self.thrower.dlr(delay, message.dlr_url, message.dlr_method,
                             level2_params(message, message.accepted_at + delay), batch_id)

    def run_batch(self, username, password, batch_id, config, messages, send_at=None):
        """Send a batch's expanded ``messages``; one callback or errback per message."""
        callback_url, errback_url = config.get("callback_url"), config.get("errback_url")
        accepted = rejected = 0
        for params in messages:
            to = _as_text(params.get("to"))
            try:
                message = self.submit(username, password, params, batch_id, send_at)
            except Rejected as exc:
                rejected += 1
                if errback_url:
                    # The batch worker strips the quote that closed the gateway's error text.
                    self.thrower.callback("errback", errback_url, {
                        "batchId": batch_id, "to": to, "status": "0",
                        "statusText": f'HTTPAPI error: Error "{exc.text}',
                    }, batch_id)
            else:
                accepted += 1
                if callback_url:
                    self.thrower.callback("callback", callback_url, {
                        "batchId": batch_id, "to": to, "status": "1",
                        "statusText": f'Success "{message.id}"',
                    }, batch_id, message.id)
        self.store.count("batch_messages_accepted", accepted)
        self.store.count("batch_messages_rejected", rejected)
