"""What the sending API accepts: content and its coding, a sender, a DLR level, a schedule.

Each function returns the value as stored, or raises ``ValidationError`` with a text that names
the problem and a ``code`` a caller can test.
"""

import datetime

from django.core.exceptions import ValidationError
from django.utils import timezone

from d7sms import conf, encoding, recipients


def content(text, hex_content, coding):
    """Return ``(content, hex_content, coding, parts)`` as stored."""
    if (text in (None, "")) == (hex_content in (None, "")):
        raise ValidationError("Give either content or hex_content (and not both).", code="content")
    if hex_content:
        if coding is None:
            raise ValidationError("hex_content needs its coding (8 for UCS-2).", code="coding")
        try:
            raw = encoding.validate_hex_content(hex_content, coding)
        except ValueError as exc:
            raise ValidationError(str(exc), code="hex_content") from None
        return "", hex_content.lower(), coding, encoding.binary_parts(raw, coding)
    if not isinstance(text, str):
        raise ValidationError("content must be text.", code="content")
    info = encoding.analyse(text)
    if coding not in (None, info.coding, encoding.UCS2):
        raise ValidationError(
            f"coding {coding} does not fit this text; leave coding unset to choose it from the text.", code="coding"
        )
    if info.coding == encoding.UCS2 or coding == encoding.UCS2:
        # Text outside GSM 03.38 sent as plain content arrives garbled: it goes as UTF-16 hex.
        parts = info.parts if info.coding == encoding.UCS2 else encoding.ucs2_parts(text)
        return text, encoding.hex_content(text), encoding.UCS2, parts
    return text, "", None, info.parts


#: Put between a message's text and its opt-out footer.
FOOTER_SEPARATOR = "\n"


def with_footer(text, footer):
    """``text`` with the opt-out ``footer`` on its own line after it (as it is without one)."""
    return f"{text}{FOOTER_SEPARATOR}{footer}" if footer else text


def sender(value):
    """The sender to store: ``value``, or DEFAULT_SENDER when it is empty."""
    value = value if value not in (None, "") else conf.get("DEFAULT_SENDER")
    if value and not recipients.is_valid_sender(value):
        raise ValidationError(f"Invalid sender {value!r}: {recipients.SENDER_RULE}.", code="sender")
    return value or ""


def dlr_level(level):
    """The DLR level to ask for: ``level``, or DLR_LEVEL when it is None."""
    level = conf.get("DLR_LEVEL") if level is None else level
    if level not in (0, 1, 2, 3):
        raise ValidationError(f"dlr_level must be 0, 1, 2 or 3, not {level!r}.", code="dlr_level")
    return level


def schedule(schedule_at):
    """Return ``(time, held here)`` for a schedule; a time already passed means now."""
    if schedule_at is None:
        return None, False
    if not isinstance(schedule_at, datetime.datetime) or timezone.is_naive(schedule_at):
        raise ValidationError("schedule_at must be a timezone-aware datetime.", code="schedule")
    return schedule_at, schedule_at > timezone.now()
