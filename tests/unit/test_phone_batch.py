"""The fast number checker gives `phones.normalize`'s answers, accepted or refused."""

from __future__ import annotations

import random

import phonenumbers
import pytest

from smsrelay.domain import phones
from smsrelay.domain.phone_batch import NumberChecker, fast_accept


def _samples() -> list[str]:
    rng = random.Random(7)
    found = []
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for kind in range(12):
            example = phonenumbers.example_number_for_type(region, kind)
            if example is not None:
                found.append(phonenumbers.format_number(example, 0))
    for code in sorted(phonenumbers.COUNTRY_CODE_TO_REGION_CODE):
        for _ in range(25):
            digits = "".join(rng.choice("0123456789") for _ in range(rng.randint(6, 12)))
            found.append(f"+{code}{digits}")
    return found


def test_every_fast_acceptance_is_what_normalize_gives() -> None:
    accepted = 0
    for raw in _samples():
        fast = fast_accept(raw)
        if fast is None:
            continue
        accepted += 1
        number = phones.normalize(raw)
        assert fast == (number.e164, number.region), raw
    assert accepted > 500  # the fast path is taken for real numbers of many countries


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("+442079460000", "landline"),
        ("+19005550123", "not_sms_capable"),
        ("+441234", "invalid_number"),
        ("hello", "invalid_number"),
        ("4155552671", "invalid_number"),
    ],
)
def test_refusals_carry_normalize_s_reason_and_a_stable_code(raw: str, code: str) -> None:
    check = NumberChecker().check(raw)
    assert check.e164 is None and check.code == code
    with pytest.raises(phones.InvalidPhoneNumber) as refused:
        phones.normalize(raw)
    assert check.reason == str(refused.value)


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("+1 (415) 555-2671", "+14155552671"),
        ("+15005550006", "+15005550006"),  # a Twilio test number, through normalize
        ("+44 07911 123456", "+447911123456"),  # a national prefix after the code
    ],
)
def test_other_spellings_are_accepted_as_normalize_accepts_them(raw: str, e164: str) -> None:
    assert NumberChecker().check(raw).e164 == e164


def test_a_default_region_reads_national_numbers() -> None:
    assert NumberChecker("GB").check("07911 123456").e164 == "+447911123456"
