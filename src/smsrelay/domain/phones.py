"""Phone number normalisation to E.164, with reasons a number cannot receive SMS."""

from __future__ import annotations

from dataclasses import dataclass

import phonenumbers
from phonenumbers import PhoneNumberType

# Number types that can receive SMS. FIXED_LINE_OR_MOBILE covers NANP numbers, where the
# metadata cannot tell the two apart; the provider reports 21614 when it is a landline.
_SMS_CAPABLE = frozenset(
    {
        PhoneNumberType.MOBILE,
        PhoneNumberType.FIXED_LINE_OR_MOBILE,
        PhoneNumberType.PERSONAL_NUMBER,
        PhoneNumberType.VOIP,
        PhoneNumberType.PAGER,
        PhoneNumberType.TOLL_FREE,  # US/CA toll-free numbers can be SMS-enabled
        PhoneNumberType.UNKNOWN,
    }
)

_REASONS = {
    PhoneNumberType.FIXED_LINE: "is a fixed-line number, which cannot receive SMS",
    PhoneNumberType.PREMIUM_RATE: "is a premium-rate number; smsrelay does not send to those",
    PhoneNumberType.SHARED_COST: "is a shared-cost number, which cannot receive SMS",
    PhoneNumberType.UAN: "is a universal access number, which cannot receive SMS",
    PhoneNumberType.VOICEMAIL: "is a voicemail access number, which cannot receive SMS",
}


class InvalidPhoneNumber(ValueError):
    """The number cannot be used as an SMS destination; the message says why."""


@dataclass(frozen=True, slots=True)
class PhoneNumber:
    e164: str
    region: str | None
    country_code: int


def normalize(raw: str, default_region: str | None = None) -> PhoneNumber:
    """Parse what a person typed into E.164, or raise `InvalidPhoneNumber` with the reason."""
    text = raw.strip()
    if not text:
        raise InvalidPhoneNumber("is empty; give a number in E.164 form such as +14155552671")
    parsed = _parse(text, default_region)
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidPhoneNumber(f"'{_shown(text)}' is not a valid phone number")
    kind = phonenumbers.number_type(parsed)
    if kind not in _SMS_CAPABLE:
        raise InvalidPhoneNumber(f"'{_shown(text)}' {_REASONS.get(kind, 'cannot receive SMS')}")
    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    region = phonenumbers.region_code_for_number(parsed)
    return PhoneNumber(e164=e164, region=region, country_code=int(parsed.country_code or 0))


def _parse(text: str, default_region: str | None) -> phonenumbers.PhoneNumber:
    if not text.startswith("+") and default_region is None:
        raise InvalidPhoneNumber(
            f"'{_shown(text)}' has no country code; use E.164 such as +14155552671"
        )
    try:
        return phonenumbers.parse(text, default_region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhoneNumber(f"'{_shown(text)}' is not a phone number ({exc})") from None


def _shown(text: str) -> str:
    """Echo at most the last four characters of the caller's input."""
    return text if len(text) <= 4 else "…" + text[-4:]
