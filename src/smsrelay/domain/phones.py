"""Phone number normalisation to E.164, with the reason a number cannot receive SMS."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

import phonenumbers
from phonenumbers import PhoneNumberType, ValidationResult, shortnumberinfo

__all__ = [
    "InvalidPhoneNumber",
    "NumberFacts",
    "PhoneNumber",
    "accept",
    "describe",
    "is_test_number",
    "normalize",
]

# Number types that can receive SMS. FIXED_LINE_OR_MOBILE covers NANP numbers and others where
# the metadata cannot tell the two apart: only a number the library is sure about is refused.
_SMS_CAPABLE: Final = frozenset(
    {
        PhoneNumberType.MOBILE,
        PhoneNumberType.FIXED_LINE_OR_MOBILE,
        PhoneNumberType.PERSONAL_NUMBER,  # includes NANP 500 (Twilio's test numbers)
        PhoneNumberType.VOIP,
        PhoneNumberType.PAGER,
        PhoneNumberType.UNKNOWN,
    }
)

# Why a valid number of another type cannot be an SMS destination.
_REASONS: Final = {
    # Twilio SMS guidelines (twilio.com/guidelines/<cc>/sms, "Sending SMS to landline numbers"):
    # a landline destination is refused with error 21614.
    PhoneNumberType.FIXED_LINE: "is a fixed-line (landline) number, which cannot receive SMS",
    # Product decision: premium-rate lines bill the caller and are a fraud vector.
    PhoneNumberType.PREMIUM_RATE: "is a premium-rate number; smsrelay does not send to those",
    # Shared-cost, UAN and voicemail ranges are call-routing services without a handset.
    PhoneNumberType.SHARED_COST: "is a shared-cost number, which cannot receive SMS",
    PhoneNumberType.UAN: "is a universal access number, which cannot receive SMS",
    PhoneNumberType.VOICEMAIL: "is a voicemail access number, which cannot receive SMS",
    # Twilio: toll-free SMS exists in the US and Canada only (NANP 8XX); elsewhere (e.g. UK 0800,
    # international +800) toll-free numbers are voice-only.
    PhoneNumberType.TOLL_FREE: "is a toll-free number outside the US and Canada, "
    "which cannot receive SMS",
}
_NANP: Final = 1  # country calling code of the US, Canada and the Caribbean (NANP)

# Twilio's test-credential magic numbers (+1 500 555 xxxx, twilio.com/docs/iam/test-credentials)
# drive the simulator: they stay accepted whatever the numbering metadata says about NANP 500.
_TWILIO_TEST_NUMBER: Final = re.compile(r"\+1500555\d{4}")

_LENGTH_REASONS: Final = {
    ValidationResult.TOO_SHORT: "is too short for a {cc} number",
    ValidationResult.TOO_LONG: "is too long for a {cc} number",
    ValidationResult.INVALID_LENGTH: "has the wrong number of digits for a {cc} number",
    ValidationResult.IS_POSSIBLE_LOCAL_ONLY: "has too few digits for a {cc} number: "
    "is the area code missing?",
}


_PARSE_REASONS: Final = {
    phonenumbers.NumberParseException.INVALID_COUNTRY_CODE: "has an unknown country calling code",
    phonenumbers.NumberParseException.NOT_A_NUMBER: "is not a phone number",
    phonenumbers.NumberParseException.TOO_SHORT_AFTER_IDD: "is too short after its international "
    "prefix",
    phonenumbers.NumberParseException.TOO_SHORT_NSN: "is too short to be a phone number",
    phonenumbers.NumberParseException.TOO_LONG: "is too long to be a phone number",
}


class InvalidPhoneNumber(ValueError):
    """The number cannot be used as an SMS destination; the message says why."""


@dataclass(frozen=True, slots=True)
class PhoneNumber:
    """An SMS-capable destination: E.164 form, region (ISO 3166 or "001"), calling code, type."""

    e164: str
    region: str | None
    country_code: int
    number_type: str = "UNKNOWN"


@dataclass(frozen=True, slots=True)
class NumberFacts:
    """What the numbering metadata says about a parsed number, before any SMS policy."""

    valid: bool
    number_type: str
    region: str | None
    e164: str
    kind: int = PhoneNumberType.UNKNOWN  # `number_type` as phonenumbers' PhoneNumberType


def normalize(raw: str, default_region: str | None = None) -> PhoneNumber:
    """Parse what a person typed into E.164, or raise `InvalidPhoneNumber` with the reason."""
    text = raw.strip()
    if not text:
        raise InvalidPhoneNumber("is empty; give a number in E.164 form such as +14155552671")
    return accept(_parse(text, default_region), _shown(text))


def accept(parsed: phonenumbers.PhoneNumber, shown: str = "the number") -> PhoneNumber:
    """The SMS destination for `parsed`, or `InvalidPhoneNumber` saying why it cannot be one."""
    facts = describe(parsed)
    if is_test_number(facts.e164):
        return _destination(parsed, facts)
    if parsed.extension:
        raise InvalidPhoneNumber(f"{shown} has an extension; SMS cannot reach an extension")
    if not facts.valid:
        raise InvalidPhoneNumber(f"{shown} {_invalid_reason(parsed)}")
    reason = _unusable_reason(parsed, facts.kind)
    if reason is not None:
        raise InvalidPhoneNumber(f"{shown} {reason}")
    return _destination(parsed, facts)


def describe(parsed: phonenumbers.PhoneNumber) -> NumberFacts:
    """Validity, type, region and E.164 form of `parsed`, as the metadata has them."""
    kind = phonenumbers.number_type(parsed)
    return NumberFacts(
        # What `is_valid_number` answers: it matches the same region's patterns again, and the
        # patterns are most of what a number costs to check (a bulk send checks 100,000).
        valid=kind != PhoneNumberType.UNKNOWN,
        number_type=_type_name(kind),
        region=phonenumbers.region_code_for_number(parsed),
        e164=phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164),
        kind=kind,
    )


def is_test_number(e164: str) -> bool:
    """True for Twilio's test-credential numbers (+1 500 555 xxxx)."""
    return _TWILIO_TEST_NUMBER.fullmatch(e164) is not None


def _destination(parsed: phonenumbers.PhoneNumber, facts: NumberFacts) -> PhoneNumber:
    return PhoneNumber(
        e164=facts.e164,
        region=facts.region,
        country_code=int(parsed.country_code or 0),
        number_type=facts.number_type,
    )


def _parse(text: str, default_region: str | None) -> phonenumbers.PhoneNumber:
    region = default_region.upper() if default_region else None
    if not text.startswith("+") and region is None:
        raise InvalidPhoneNumber(
            f"{_shown(text)} has no country code; use E.164 such as +14155552671"
        )
    try:
        return phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as exc:
        reason = _PARSE_REASONS.get(exc.error_type, "is not a phone number")
        raise InvalidPhoneNumber(f"{_shown(text)} {reason}") from None


def _invalid_reason(parsed: phonenumbers.PhoneNumber) -> str:
    calling_code = f"+{parsed.country_code}"
    if shortnumberinfo.is_valid_short_number(parsed):
        return (
            f"is a short code or service number (for {calling_code}); "
            "smsrelay sends to full phone numbers only"
        )
    possible = phonenumbers.is_possible_number_with_reason(parsed)
    if possible == ValidationResult.INVALID_COUNTRY_CODE:
        return f"has an unknown country calling code ({calling_code})"
    if possible in _LENGTH_REASONS:
        return _LENGTH_REASONS[possible].format(cc=calling_code)
    return (
        f"is not a valid {calling_code} number (no numbers of this length begin with these digits)"
    )


def _unusable_reason(parsed: phonenumbers.PhoneNumber, kind: int) -> str | None:
    if kind in _SMS_CAPABLE:
        return None
    if kind == PhoneNumberType.TOLL_FREE and parsed.country_code == _NANP:
        return None  # US/CA toll-free numbers can be SMS-enabled
    return _REASONS.get(kind, "cannot receive SMS")


def _type_name(kind: int) -> str:
    name: str = PhoneNumberType.to_string(kind)
    return name


def _shown(text: str) -> str:
    """Echo at most the last four characters of the caller's input, quoted."""
    return repr(text) if len(text) <= 4 else f"'…{text[-4:]}'"
