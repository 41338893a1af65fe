"""How many SMS parts (and so charges) a message takes, counted the way the gateway splits it.

Kept inside the sandbox on purpose: the sandbox models the server, so it must not share the
client's own arithmetic (a bug there would then hide itself in every test).
"""

import binascii

# GSM 03.38 extension table: each of these costs an escape septet plus its own.
_GSM_EXTENSION = "^{}\\[~]|€\f"

GSM7_SIZES = (160, 153)
UCS2_SIZES = (70, 67)  # UTF-16 code units
OCTET_SIZES = (140, 134)


class HexContentError(ValueError):
    """``hex-content`` is not valid hexadecimal."""


def split_count(length, single, multi):
    """Parts needed for ``length`` units when one part holds ``single`` and a split part ``multi``."""
    if length <= single:
        return 1
    return -(-length // multi)


def gsm7_septets(text):
    """Septets ``text`` takes in GSM 03.38.

    Characters outside the alphabet are sent as ``?`` by the gateway (one septet each), so only
    the extension characters cost more than one.
    """
    return len(text) + sum(text.count(ch) for ch in _GSM_EXTENSION)


def decode_hex(hex_content):
    """Bytes of ``hex_content``; raises HexContentError when it is not hexadecimal."""
    try:
        return binascii.unhexlify(hex_content)
    except (binascii.Error, ValueError, TypeError) as exc:
        raise HexContentError(str(exc)) from exc


def count_parts(coding, content=None, raw=None):
    """Parts for a message of data ``coding`` given as text ``content`` or bytes ``raw``.

    Coding 0 text counts GSM-7 septets (160/153). Coding 8 counts UTF-16 code units (70/67): for
    ``raw`` bytes that is len/2; text sent with coding 8 travels as its UTF-8 bytes, exactly as the
    real gateway passes it on. Every other case counts octets (140/134).
    """
    if raw is None:
        if coding == 0:
            return split_count(gsm7_septets(content), *GSM7_SIZES)
        raw = content.encode("utf-8")
    if coding == 8:
        return split_count(-(-len(raw) // 2), *UCS2_SIZES)
    return split_count(len(raw), *OCTET_SIZES)
