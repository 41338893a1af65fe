"""How request parameters are written on the wire, checked before they are sent."""

import datetime
import math
from decimal import Decimal

from d7sms.errors import InvalidRequest

# Python-friendly and "_" spellings to the names the provider's page uses. The server turns
# "_" into "-" itself, so this is about sending what the documentation shows.
WIRE_KEYS = {
    "sender": "from",
    "dlr_url": "dlr-url",
    "dlr_level": "dlr-level",
    "dlr_method": "dlr-method",
    "validity_period": "validity-period",
    "hex-content": "hex_content",
}
TEXT_KEYS = ("content", "hex_content")

_MAX_REASONS = 20


def wire_params(params):
    """Copy one message (or the globals) with the spec's key names, dropping None values."""
    out = {}
    for key, value in params.items():
        if value is None:
            continue
        key = WIRE_KEYS.get(key, key)
        if key == "dlr" and isinstance(value, bool):
            value = "yes" if value else "no"
        elif key == "to" and isinstance(value, tuple):
            value = list(value)
        out[key] = value
    return out


def check_batch(messages, globals_):
    """Return the number of destinations, or raise InvalidRequest for messages D7 would skip."""
    if not messages:
        raise InvalidRequest("The batch has no messages.", reached_provider=False)
    expected = 0
    problems = []
    global_to = globals_.get("to")
    global_text = {k: globals_.get(k) for k in TEXT_KEYS}
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            problems.append((index, "not a dict"))
            continue
        to = message.get("to", global_to)
        texts = [k for k in TEXT_KEYS if message.get(k, global_text[k]) not in (None, "")]
        if isinstance(to, list):
            if not to or any(t is None or t == "" or isinstance(t, bool) for t in to):
                problems.append((index, "empty 'to' list or empty destination in it"))
                continue
            count = len(to)
        elif to is None or to == "" or isinstance(to, bool):
            problems.append((index, "no 'to'"))
            continue
        else:
            count = 1
        if not texts:
            problems.append((index, "no content or hex_content"))
        elif len(texts) == 2:
            problems.append((index, "both content and hex_content"))
        else:
            expected += count
    if problems:
        shown = "; ".join(f"message {i}: {why}" for i, why in problems[:_MAX_REASONS])
        more = f"; and {len(problems) - _MAX_REASONS} more" if len(problems) > _MAX_REASONS else ""
        raise InvalidRequest(
            f"D7 would skip or fail {len(problems)} of {len(messages)} messages: {shown}{more}",
            reached_provider=False,
            bad_indexes=[i for i, _ in problems],
        )
    return expected


def schedule_value(value):
    """Return ``schedule_at`` for the wire: strings as given, times as ``"<N>s"`` (N >= 1)."""
    if isinstance(value, str):
        return value
    if isinstance(value, datetime.datetime):
        if value.utcoffset() is None:
            # The server reads absolute times in its own zone; a naive value cannot be placed.
            raise ValueError("schedule_at must be a timezone-aware datetime.")
        seconds = (value - datetime.datetime.now(datetime.timezone.utc)).total_seconds()
    elif isinstance(value, datetime.timedelta):
        seconds = value.total_seconds()
    else:
        raise TypeError("schedule_at must be a str, an aware datetime or a timedelta.")
    # Rounded up, so that a batch never leaves before the time asked for.
    return f"{max(1, math.ceil(seconds))}s"


def seconds_value(value):
    """``"3599.56s"`` -> 3599.56; anything else -> None (the batch was queued regardless)."""
    if isinstance(value, str) and value.endswith("s"):
        try:
            return float(value[:-1])
        except ValueError:
            pass
    elif isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
        return float(value)
    return None
