"""Callers' mobile numbers: normalised to E.164 and kept out of logs."""

from __future__ import annotations

import phonenumbers

_SMS_CAPABLE = (
    phonenumbers.PhoneNumberType.MOBILE,
    phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
)


class InvalidPhoneNumber(ValueError):
    pass


def normalise_mobile(raw: str, region: str = "GB") -> str:
    """E.164 form of what a call handler typed (``07700 900123`` → ``+447700900123``)."""
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhoneNumber("not a phone number") from exc
    if phonenumbers.is_valid_number(number):
        if phonenumbers.number_type(number) not in _SMS_CAPABLE:
            raise InvalidPhoneNumber("not a mobile number, so it cannot receive an SMS link")
    elif not _shaped_like_mobile(number):
        raise InvalidPhoneNumber("not a valid mobile number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _shaped_like_mobile(number: phonenumbers.PhoneNumber) -> bool:
    """Ofcom's drama range (07700 900xxx) is unallocated, so not "valid", yet is what
    training and tests use: accept a number shaped like its country's mobiles."""
    region = phonenumbers.region_code_for_country_code(number.country_code or 0)
    example = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE)
    if example is None:
        return False
    wanted = phonenumbers.national_significant_number(example)
    given = phonenumbers.national_significant_number(number)
    return len(given) == len(wanted) and given[0] == wanted[0]


def mask(e164: str) -> str:
    """What a screen or a log may show: enough to confirm with the caller, no more."""
    return e164[:4] + "•" * max(0, len(e164) - 7) + e164[-3:]
