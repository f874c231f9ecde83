import pytest

from signalling.sms.phone import InvalidPhoneNumber, mask, normalise_mobile


@pytest.mark.parametrize(
    ("typed", "e164"),
    [
        ("07700 900123", "+447700900123"),
        ("07700900123", "+447700900123"),
        ("+44 7700 900123", "+447700900123"),
        ("(07911) 123-456", "+447911123456"),
        ("0044 7911 123456", "+447911123456"),
    ],
)
def test_uk_mobiles_are_normalised(typed: str, e164: str) -> None:
    assert normalise_mobile(typed) == e164


@pytest.mark.parametrize("typed", ["", "hello", "0791112", "+44 7700 90012", "020 7946 0000"])
def test_non_mobiles_are_refused(typed: str) -> None:
    with pytest.raises(InvalidPhoneNumber):
        normalise_mobile(typed)


def test_mask_hides_the_middle() -> None:
    masked = mask("+447700900123")
    assert masked.startswith("+447") and masked.endswith("123")
    assert "900" not in masked
