"""GSM-7 / UCS-2 choice, part counting and hex content."""

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from d7sms import encoding
from d7sms.encoding import GSM7, UCS2, analyse, hex_content, is_gsm7, message_payload, validate_hex_content

GSM_BASIC = encoding._BASIC
GSM_EXTENSION = encoding._EXTENSION
EMOJI = "\U0001f600"

# Text drawn mostly from the GSM alphabet, so that both codings and all boundaries are hit.
gsm_text = st.text(alphabet=st.sampled_from(GSM_BASIC + GSM_EXTENSION), max_size=400)
any_text = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=300)
long_gsm_text = st.text(alphabet=st.sampled_from(GSM_BASIC + GSM_EXTENSION), min_size=150, max_size=800)
long_ucs2_text = st.text(alphabet=st.sampled_from("жab€" + EMOJI), min_size=60, max_size=400)
# Small part sizes put a boundary every few characters, where the split rules matter.
small_sizes = st.tuples(st.integers(2, 12), st.integers(2, 12))
mixed_text = st.one_of(
    gsm_text,
    any_text,
    st.text(alphabet=st.sampled_from(GSM_BASIC + GSM_EXTENSION + "ñçأ" + EMOJI), max_size=400),
)


def greedy_parts(text, per_part, cost):
    """Split the way the gateway does; return each part's units."""
    parts, used = [], 0
    for char in text:
        c = cost(char)
        if used + c > per_part:
            parts.append(used)
            used = 0
        used += c
    parts.append(used)
    return parts


def gsm_cost(char):
    return 2 if char in GSM_EXTENSION else 1


# -- examples -----------------------------------------------------------------------------


def test_spec_arabic_example():
    assert hex_content("أرنب") == "0623063106460628"
    assert message_payload("أرنب") == {"hex_content": "0623063106460628", "coding": 8}
    info = analyse("أرنب")
    assert (info.coding, info.units, info.parts) == (UCS2, 4, 1)
    assert info.ucs2_characters == ("أ", "ر", "ن", "ب")


def test_gsm_text_goes_as_content():
    assert message_payload("Hello @ £5 {ok}") == {"content": "Hello @ £5 {ok}"}


@pytest.mark.parametrize(
    "length, parts, per_part",
    [(1, 1, 160), (160, 1, 160), (161, 2, 153), (306, 2, 153), (307, 3, 153), (459, 3, 153), (460, 4, 153)],
)
def test_gsm_part_boundaries(length, parts, per_part):
    info = analyse("a" * length)
    assert (info.coding, info.units, info.parts, info.per_part) == (GSM7, length, parts, per_part)


@pytest.mark.parametrize(
    "length, parts, per_part", [(70, 1, 70), (71, 2, 67), (134, 2, 67), (135, 3, 67)]
)
def test_ucs2_part_boundaries(length, parts, per_part):
    info = analyse("ж" * length)
    assert (info.coding, info.units, info.parts, info.per_part) == (UCS2, length, parts, per_part)


def test_euro_costs_two_septets():
    info = analyse("€")
    assert (info.coding, info.units, info.parts) == (GSM7, 2, 1)
    assert info.extended_characters == ("€",)
    assert analyse("a" * 158 + "€").parts == 1
    assert analyse("a" * 159 + "€").parts == 2


def test_extended_characters_distinct_in_first_seen_order():
    info = analyse("x]^]{^\f")
    assert info.extended_characters == ("]", "^", "{", "\f")
    assert info.units == 1 + 2 * 6


def test_emoji_costs_two_units():
    info = analyse(EMOJI)
    assert (info.coding, info.units, info.parts) == (UCS2, 2, 1)
    assert analyse(EMOJI * 35).parts == 1
    assert analyse("ж" + EMOJI * 35).parts == 2


def test_extension_char_never_straddles_a_part():
    # 152 septets, then "€" (2): 154 > 153 in part one, so "€" opens part two.
    text = "a" * 152 + "€" + "a" * 152
    info = analyse(text)
    assert info.units == 306  # exactly 2 x 153 if it could be split...
    assert info.parts == 3  # ...but it cannot
    assert analyse("a" * 151 + "€" + "a" * 153).parts == 2


def test_surrogate_pair_never_straddles_a_part():
    text = "ж" * 66 + EMOJI + "ж" * 66
    info = analyse(text)
    assert info.units == 134
    assert info.parts == 3
    assert analyse("ж" * 65 + EMOJI + "ж" * 67).parts == 2


def test_ucs2_characters_distinct_in_first_seen_order():
    info = analyse("açbñç" + EMOJI + "ñ")
    assert info.ucs2_characters == ("ç", EMOJI)  # ñ is GSM-7


def test_gsm_alphabet_details():
    assert is_gsm7("ñÑäÄ¿¡§ΔΩ\r\n")
    assert is_gsm7("Ç")
    assert not is_gsm7("ç")  # only the capital is in GSM 03.38
    assert not is_gsm7("\x1b")  # the escape itself is not a character
    assert not is_gsm7("`")
    assert analyse("ç").ucs2_characters == ("ç",)


def test_empty_text_is_zero_parts():
    info = analyse("")
    assert (info.coding, info.units, info.parts) == (GSM7, 0, 0)
    assert is_gsm7("")


def test_custom_sizes_and_settings(settings):
    assert analyse("a" * 11, gsm7_sizes=(10, 5)).parts == 3
    settings.D7SMS = {**settings.D7SMS, "UCS2_PART_SIZES": (4, 3)}
    assert analyse("жжжжж").parts == 2
    with pytest.raises(ValueError, match="GSM7_PART_SIZES"):
        analyse("a", gsm7_sizes=(1, 1))


@pytest.mark.parametrize(
    "value, coding, message",
    [
        ("", 0, "empty"),
        ("abc", 0, "odd length"),
        ("00zz", 0, "non-hex character 'z' at position 2"),
        ("00 11", 0, "position 2"),
        ("002300", 8, "even number of bytes, got 3"),
        ("0023", 15, "coding 15"),
        ("0023", -1, "coding -1"),
        ("0023", True, "coding True"),
    ],
)
def test_validate_hex_content_rejects(value, coding, message):
    with pytest.raises(ValueError, match=message):
        validate_hex_content(value, coding)


def test_validate_hex_content_accepts():
    assert validate_hex_content("0623063106460628", 8) == "أرنب".encode("utf-16-be")
    assert validate_hex_content("ABcd01", 4) == b"\xab\xcd\x01"


def test_lone_surrogate_cannot_be_hex_encoded():
    with pytest.raises(ValueError):
        hex_content("a\ud800")


# -- properties ---------------------------------------------------------------------------


@given(mixed_text, st.sampled_from(list(GSM_BASIC + GSM_EXTENSION + "ñأ" + EMOJI)))
def test_parts_monotonic_when_appending(text, char):
    # Holds across a switch to UCS-2 too: that only lowers the capacity per part.
    assert analyse(text + char).parts >= analyse(text).parts


@given(any_text)
def test_hex_content_round_trips(text):
    assert bytes.fromhex(hex_content(text)).decode("utf-16-be") == text


@given(mixed_text)
def test_coding_matches_is_gsm7(text):
    assert (analyse(text).coding == GSM7) == is_gsm7(text)


@given(mixed_text)
def test_parts_hold_all_units(text):
    info = analyse(text)
    assert info.parts * info.per_part >= info.units
    assert (info.parts == 0) == (text == "")


@given(long_gsm_text)
def test_gsm_greedy_split_fits(text):
    info = analyse(text)
    parts = greedy_parts(text, info.per_part, gsm_cost)
    assert len(parts) == info.parts
    assert max(parts) <= info.per_part
    assert sum(parts) == info.units


@given(st.text(alphabet=st.sampled_from("ab€^"), min_size=1, max_size=60), small_sizes)
def test_gsm_greedy_split_fits_small_parts(text, sizes):
    info = analyse(text, gsm7_sizes=sizes)
    per_part = sizes[0] if info.units <= sizes[0] else sizes[1]
    assert info.per_part == per_part
    parts = greedy_parts(text, per_part, gsm_cost)
    assert len(parts) == info.parts
    assert max(parts) <= per_part
    assert info.parts * per_part >= info.units


@given(long_ucs2_text.filter(lambda t: not is_gsm7(t)))
def test_ucs2_greedy_split_fits(text):
    info = analyse(text)
    parts = greedy_parts(text, info.per_part, lambda c: 2 if c > "\uffff" else 1)
    assert len(parts) == info.parts
    assert max(parts) <= info.per_part
    assert sum(parts) == info.units


@given(st.text(alphabet=st.sampled_from("жa" + EMOJI), min_size=1, max_size=60), small_sizes)
def test_ucs2_greedy_split_fits_small_parts(text, sizes):
    assume(not is_gsm7(text))
    info = analyse(text, ucs2_sizes=sizes)
    parts = greedy_parts(text, info.per_part, lambda c: 2 if c > "\uffff" else 1)
    assert len(parts) == info.parts
    assert max(parts) <= info.per_part


@given(st.one_of(long_gsm_text, long_ucs2_text), st.sampled_from(list("a€ж" + EMOJI)))
def test_parts_monotonic_for_long_text(text, char):
    assert analyse(text + char).parts >= analyse(text).parts


@given(any_text.filter(bool))
def test_validate_accepts_every_hex_content(text):
    value = hex_content(text)
    assert validate_hex_content(value, 8) == text.encode("utf-16-be")
    assert validate_hex_content(value.upper(), 8) == text.encode("utf-16-be")


@given(any_text.filter(bool), st.data())
def test_validate_rejects_mutations(text, data):
    value = hex_content(text)
    kind = data.draw(st.sampled_from(["drop", "bad char", "half unit"]))
    if kind == "drop":
        mutated, expected = value[:-1], "odd length"
    elif kind == "bad char":
        pos = data.draw(st.integers(0, len(value) - 1))
        char = data.draw(st.sampled_from("gGxz -_\n"))
        mutated, expected = value[:pos] + char + value[pos + 1:], f"position {pos}"
    else:
        mutated, expected = value[:-2], "even number of bytes"
        assume(mutated)
    with pytest.raises(ValueError, match=expected):
        validate_hex_content(mutated, 8)


@pytest.mark.parametrize(
    "size, coding, parts",
    [(0, 4, 0), (140, 4, 1), (141, 4, 2), (268, 4, 2), (269, 4, 3), (140, 8, 1), (142, 8, 2), (268, 8, 2)],
)
def test_binary_parts(size, coding, parts):
    assert encoding.binary_parts(bytes(size), coding) == parts


def test_ucs2_parts_for_text_that_would_fit_gsm7():
    assert encoding.ucs2_parts("a" * 70) == 1
    assert encoding.ucs2_parts("a" * 71) == 2
    # 66 letters then an emoji: the surrogate pair does not fit in the first 67-unit part.
    assert encoding.ucs2_parts("a" * 66 + "\U0001F600" + "a" * 10) == 2
    assert encoding.ucs2_parts("a" * 66 + "\U0001F600" + "a" * 66) == 3
