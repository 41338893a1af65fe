"""Addresses: phone numbers validated and normalised to E.164, recipient lists, sender ids."""

import re
from dataclasses import dataclass

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat, PhoneNumberType

from d7sms import conf

_PARSE_ERRORS = {
    NumberParseException.INVALID_COUNTRY_CODE: "unknown country code (use +<country code> or set a default country)",
    NumberParseException.NOT_A_NUMBER: "not a phone number",
    NumberParseException.TOO_SHORT_AFTER_IDD: "too short",
    NumberParseException.TOO_SHORT_NSN: "too short",
    NumberParseException.TOO_LONG: "too long",
}
# Types that can never receive an SMS.
_NO_SMS = {PhoneNumberType.FIXED_LINE, PhoneNumberType.PAGER, PhoneNumberType.VOICEMAIL}


# Alphanumeric senders are limited to 11 characters by the SMS header; numeric ones to E.164.
# Matched in full (fullmatch): "$" would also match before a trailing newline.
_SENDER = re.compile(r"[A-Za-z0-9 ]{1,11}|\+?[0-9]{1,15}")
SENDER_RULE = "up to 11 letters, digits or spaces, or a number of up to 15 digits"


def is_valid_sender(value):
    """True when ``value`` can be an SMS sender (``SENDER_RULE``)."""
    return isinstance(value, str) and bool(_SENDER.fullmatch(value))


class InvalidNumber(ValueError):
    """A number that cannot be sent to; the message says why."""


def normalise(value, region=None):
    """Return ``value`` as an E.164 string, or raise :class:`InvalidNumber` saying why.

    National numbers are read in ``region`` (default: the DEFAULT_REGION setting). A bare
    string of digits that is too long to be national is tried as international.
    """
    text = str(value).strip()
    if not text:
        raise InvalidNumber("empty")
    region = region if region is not None else conf.get("DEFAULT_REGION")
    candidates = [text]
    if text[0] != "+" and text.isdigit():
        candidates.append("+" + text)  # D7's own examples write international numbers without "+"
    reason = None
    for candidate in candidates:
        try:
            number = phonenumbers.parse(candidate, region or None)
        except NumberParseException as exc:
            reason = reason or _PARSE_ERRORS.get(exc.error_type, "not a phone number")
            continue
        # number_type() is UNKNOWN exactly when is_valid_number() is false; calling both would
        # match the number against its region's patterns twice.
        kind = phonenumbers.number_type(number)
        if kind != PhoneNumberType.UNKNOWN:
            if kind in _NO_SMS:
                reason = "a landline, which cannot receive SMS"
                continue
            return phonenumbers.format_number(number, PhoneNumberFormat.E164)
        reason = reason or "not a valid number" + (f" in {region}" if region and candidate[0] != "+" else "")
    raise InvalidNumber(reason)


@dataclass(frozen=True)
class Problem:
    """A recipient that was left out: its position (1-based), what was given, and why."""

    position: int
    value: str
    reason: str

    def __str__(self):
        return f"#{self.position} {self.value!r}: {self.reason}"


def clean_list(values, region=None):
    """Normalise many numbers; return ``(numbers, problems, duplicates)``.

    ``numbers`` keeps the first occurrence of each number in input order; ``problems`` lists
    the invalid entries with their 1-based position; ``duplicates`` counts repeats removed.
    Accepts any iterable, so a large list is read once.
    """
    seen = set()
    numbers, problems, duplicates = [], [], 0
    for position, value in enumerate(values, start=1):
        try:
            number = normalise(value, region)
        except InvalidNumber as exc:
            problems.append(Problem(position, str(value), str(exc)))
            continue
        if number in seen:
            duplicates += 1
            continue
        seen.add(number)
        numbers.append(number)
    return numbers, problems, duplicates
