"""GSM-7 or UCS-2: which coding a text needs, what it costs in parts, and its hex form.

GSM 03.38 text travels as ``content``. Anything else must travel as ``hex_content`` (UTF-16BE,
coding 8): sent as plain ``content`` the gateway replaces it with ``?`` or garbles it.

Part counting follows what the gateway does when it splits: an extension character (its
escape and itself) and a UTF-16 surrogate pair are never cut in two, so a part may carry one
unit less than its capacity. Empty text is one GSM-7 message of 0 parts (D7 refuses empty
content anyway).
"""

import re
from dataclasses import dataclass

from d7sms import conf

__all__ = [
    "GSM7",
    "UCS2",
    "TextInfo",
    "analyse",
    "is_gsm7",
    "hex_content",
    "validate_hex_content",
    "message_payload",
]

GSM7 = 0
UCS2 = 8

# GSM 03.38 default alphabet in table order, without 0x1B (the escape to the extension table).
_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
).replace("\x1b", "")
# Extension table: each costs an escape septet plus its own.
_EXTENSION = "\f^{}\\[~]|€"
_GSM_BASIC = frozenset(_BASIC)
_GSM_EXTENSION = frozenset(_EXTENSION)
_GSM_ALL = _GSM_BASIC | _GSM_EXTENSION

_NON_HEX = re.compile(r"[^0-9A-Fa-f]")


@dataclass(frozen=True, slots=True)
class TextInfo:
    """How a text would be sent.

    ``units`` are GSM-7 septets (extension characters count 2) or UTF-16 code units
    (characters beyond the BMP, such as most emoji, count 2). ``per_part`` is the capacity
    of one part of this message: the single-message size when it fits in one, else the
    multipart size. ``extended_characters`` is empty for UCS-2 text, where they cost 1.
    """

    coding: int
    units: int
    parts: int
    per_part: int
    ucs2_characters: tuple[str, ...]
    extended_characters: tuple[str, ...]


def is_gsm7(text):
    """Return True if every character of ``text`` is in the GSM 03.38 alphabet (with extension)."""
    return _GSM_ALL.issuperset(text)


def analyse(text, *, gsm7_sizes=None, ucs2_sizes=None):
    """Return the :class:`TextInfo` for ``text``.

    Sizes are ``(single, per part when split)`` pairs; they default to the
    ``GSM7_PART_SIZES`` and ``UCS2_PART_SIZES`` settings.
    """
    if _GSM_ALL.issuperset(text):
        single, multi = _sizes(gsm7_sizes, "GSM7_PART_SIZES")
        if _GSM_EXTENSION.isdisjoint(text):
            units, extended = len(text), ()
        else:
            extended = _in_order(_GSM_EXTENSION.intersection(text), text)
            units = len(text) + sum(text.count(c) for c in extended)
        wide = bool(extended)
        coding, ucs2_chars = GSM7, ()
    else:
        single, multi = _sizes(ucs2_sizes, "UCS2_PART_SIZES")
        units = len(text.encode("utf-16-le", "surrogatepass")) // 2
        wide = units != len(text)
        coding, extended = UCS2, ()
        ucs2_chars = _in_order(set(text).difference(_GSM_ALL), text)
    if units == 0:
        return TextInfo(coding, 0, 0, single, ucs2_chars, extended)
    if units <= single:
        return TextInfo(coding, units, 1, single, ucs2_chars, extended)
    if wide:
        parts = _split_count(text, multi, _GSM_EXTENSION if coding == GSM7 else None)
    else:
        parts = -(-units // multi)
    return TextInfo(coding, units, parts, multi, ucs2_chars, extended)


# 8-bit data fills 140 octets in one part, 134 when split (6 go to the concatenation header).
OCTET_PART_SIZES = (140, 134)


def binary_parts(raw, coding):
    """Parts for binary content ``raw`` (bytes) sent with ``coding``: 2-byte units for UCS-2,
    octets for every other coding."""
    if coding == UCS2:
        single, multi = _sizes(None, "UCS2_PART_SIZES")
        units = len(raw) // 2
    else:
        (single, multi), units = OCTET_PART_SIZES, len(raw)
    if units == 0:
        return 0
    return 1 if units <= single else -(-units // multi)


def ucs2_parts(text):
    """Parts for ``text`` sent as UCS-2 even when it would fit GSM-7."""
    single, multi = _sizes(None, "UCS2_PART_SIZES")
    units = len(text.encode("utf-16-le", "surrogatepass")) // 2
    if units <= single:
        return 1 if units else 0
    return _split_count(text, multi, None) if units != len(text) else -(-units // multi)


def _in_order(chars, text):
    # Set operations and str.index run in C; a per-character Python loop would not.
    return tuple(sorted(chars, key=text.index))


def _split_count(text, per_part, extension):
    """Count parts by filling each greedily; a two-unit character that does not fit starts
    the next part."""
    parts, used = 1, 0
    for char in text:
        if extension is None:
            cost = 2 if char > "\uffff" else 1
        else:
            cost = 2 if char in extension else 1
        if used + cost > per_part:
            parts += 1
            used = 0
        used += cost
    return parts


def _sizes(given, setting):
    single, multi = conf.get(setting) if given is None else given
    if not (isinstance(single, int) and isinstance(multi, int) and single >= 2 and multi >= 2):
        # Below 2 a two-unit character could never fit in a part.
        raise ValueError(f"{setting} must be two integers >= 2, got {(single, multi)!r}.")
    return single, multi


def hex_content(text):
    """Return ``text`` as UTF-16BE in lowercase hex, the ``hex_content`` for coding 8.

    Lone surrogates cannot be encoded and raise ``ValueError``.
    """
    return text.encode("utf-16-be").hex()


def validate_hex_content(value, coding):
    """Return the bytes ``value`` stands for, or raise ``ValueError`` saying what is wrong.

    Checks: coding is an int 0..14, ``value`` is a non-empty str of hex digits of even
    length, and for coding 8 (UCS-2) holds a whole number of 2-byte units.
    """
    if isinstance(coding, bool) or not isinstance(coding, int) or not 0 <= coding <= 14:
        raise ValueError(f"Invalid coding {coding!r}: D7 accepts 0..14.")
    if not isinstance(value, str):
        raise ValueError(f"hex_content must be a str, got {type(value).__name__}.")
    if not value:
        raise ValueError("hex_content is empty.")
    bad = _NON_HEX.search(value)
    if bad:
        raise ValueError(f"hex_content has a non-hex character {bad.group()!r} at position {bad.start()}.")
    if len(value) % 2:
        raise ValueError(f"hex_content has an odd length ({len(value)} hex digits); each byte takes two.")
    if coding == UCS2 and len(value) % 4:
        raise ValueError(
            f"hex_content for coding 8 (UCS-2) needs an even number of bytes, got {len(value) // 2}."
        )
    return bytes.fromhex(value)


def message_payload(text):
    """Return the send parameters for ``text``: ``{"content": text}`` when it is GSM-7,
    else ``{"hex_content": <UTF-16BE hex>, "coding": 8}``."""
    if _GSM_ALL.issuperset(text):
        return {"content": text}
    return {"hex_content": hex_content(text), "coding": UCS2}
