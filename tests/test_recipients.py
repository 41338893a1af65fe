"""Phone numbers and sender ids."""

import pytest

from d7sms.recipients import InvalidNumber, clean_list, is_valid_sender, normalise


@pytest.mark.parametrize(
    "value, region, expected",
    [
        ("07400 123456", "GB", "+447400123456"),
        ("+44 7400 123456", None, "+447400123456"),
        ("447400123456", "GB", "+447400123456"),  # international digits without "+", as D7's examples
        ("19012233451", None, "+19012233451"),
        (447400123456, "GB", "+447400123456"),
    ],
)
def test_normalise(value, region, expected):
    assert normalise(value, region) == expected


@pytest.mark.parametrize(
    "value, reason",
    [
        ("", "empty"),
        ("abc", "not a phone number"),
        ("+44 20 7946 0000", "landline"),
        ("123", "not a valid number"),
    ],
)
def test_normalise_names_the_problem(value, reason):
    with pytest.raises(InvalidNumber, match=reason):
        normalise(value, "GB")


def test_national_number_without_region_is_refused(settings):
    settings.D7SMS = {**settings.D7SMS, "DEFAULT_REGION": None}
    with pytest.raises(InvalidNumber, match="country code"):
        normalise("07400 123456")
    with pytest.raises(InvalidNumber, match="country code"):
        normalise("07400 123456", "")  # an explicit "no region" beats the setting


def test_region_defaults_to_the_setting(settings):
    settings.D7SMS = {**settings.D7SMS, "DEFAULT_REGION": "FR"}
    assert normalise("06 12 34 56 78") == "+33612345678"


def test_clean_list_keeps_order_positions_and_counts_duplicates():
    numbers, problems, duplicates = clean_list(["07400123456", "x", "+447400123456", "07400123457"], "GB")
    assert numbers == ["+447400123456", "+447400123457"]
    assert [(p.position, p.value) for p in problems] == [(2, "x")]
    assert duplicates == 1


@pytest.mark.parametrize("value", ["D7sms", "My Shop", "ABCDEFGHIJK", "+447400123456", "12345"])
def test_valid_senders(value):
    assert is_valid_sender(value)


@pytest.mark.parametrize("value", ["", "ABCDEFGHIJKL", "shop!", "+1234567890123456", None, 42])
def test_invalid_senders(value):
    assert not is_valid_sender(value)
