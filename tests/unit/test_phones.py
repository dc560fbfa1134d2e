"""Phone numbers: every case of the shared phones.json vectors, plus what people type."""

from __future__ import annotations

import json
import re
from typing import Any

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smsrelay.domain import phones
from tests.conftest import VECTORS

CASES: list[dict[str, Any]] = json.loads((VECTORS / "phones.json").read_text("utf-8"))["cases"]

ACCEPT = None
# Our SMS decision for each vector case: None = accepted, else a phrase the refusal must contain.
# Valid fixed-line and non-NANP toll-free numbers are refused because they cannot receive SMS.
DECISIONS: dict[str, str | None] = {
    "US-mobile-example": ACCEPT,
    "CA-mobile-example": ACCEPT,
    "BS-mobile-example": ACCEPT,
    "GB-mobile-example": ACCEPT,
    "DE-mobile-example": ACCEPT,
    "FR-mobile-example": ACCEPT,
    "IT-fixed-example": "fixed-line",
    "IT-mobile-example": ACCEPT,
    "IN-mobile-example": ACCEPT,
    "BR-mobile-example": ACCEPT,
    "MX-mobile-example": ACCEPT,
    "AR-mobile-example": ACCEPT,
    "AU-mobile-example": ACCEPT,
    "CN-mobile-example": ACCEPT,
    "SG-mobile-example": ACCEPT,
    "RU-mobile-example": ACCEPT,
    "RE-mobile-example": ACCEPT,
    "YT-mobile-example": ACCEPT,
    "001-800-tollfree-example": "toll-free",
    "T-US_NUMBER": ACCEPT,
    "T-US_LOCAL_NUMBER": "area code",
    "T-GB-short-mobile": "not a valid +44 number",
    "T-GB_MOBILE": ACCEPT,
    "T-DE-1234": "not a valid +49 number",
    "T-NZ-valid": ACCEPT,
    "T-NZ-invalid": "not a valid +64 number",
    "T-IT_NUMBER": "fixed-line",
    "T-IT-too-long": "fixed-line",  # valid under real metadata: refused as a landline anyway
    "T-800-too-long": "too long",
    "T-BS_NUMBER": "fixed-line",
    "T-BS-obsolete": "not a valid +1 number",
    "T-RE-vs-YT": "fixed-line",
    "T-bad-country-code-3923": "unknown country calling code",
    "D-GB-with-trunk-zero": ACCEPT,
    "D-US-area-code-starting-1": "not a valid +1 number",
    "D-MX-old-mobile-1": "too long",
    "D-AR-mobile-without-9": "fixed-line",
    "D-no-plus": "no country code",
    "D-spaces": ACCEPT,
    "D-16-digits": "too long",
}


def _ids(case: dict[str, Any]) -> str:
    return str(case["id"])


def _parsed(case: dict[str, Any]) -> phonenumbers.PhoneNumber | None:
    """The case's number as the library parses it (None when it does not parse at all)."""
    fields = case.get("phone_number_fields")
    if case["e164"] is None and fields is not None:
        return phonenumbers.PhoneNumber(
            country_code=fields["country_code"], national_number=fields["national_number"]
        )
    try:
        return phonenumbers.parse(case["e164"], None)
    except phonenumbers.NumberParseException:
        return None


def _expected(case: dict[str, Any]) -> dict[str, Any]:
    """The expectation to hold the code to. Cases asserted against libphonenumber's TEST metadata
    that real metadata contradicts (`real_metadata_agrees_with_expected: false`) are checked
    against the file's real-metadata derivation instead; the vector itself is left untouched."""
    if case["real_metadata_agrees_with_expected"]:
        return dict(case["expected"])
    derived = case["derived_phonenumbers_9_0_43"]
    return {"valid": derived["is_valid"], "type": derived["type"], "region": derived["region"]}


def test_decision_table_covers_every_vector() -> None:
    assert set(DECISIONS) == {case["id"] for case in CASES}
    assert len(CASES) == 40


@pytest.mark.parametrize("case", CASES, ids=_ids)
def test_vector_facts(case: dict[str, Any]) -> None:
    expected = _expected(case)
    parsed = _parsed(case)
    facts = None if parsed is None else phones.describe(parsed)
    assert (facts is not None and facts.valid) == expected["valid"]
    if facts is None:
        return
    if "type" in expected:
        assert facts.number_type == expected["type"]
    if "region" in expected:
        assert facts.region == expected["region"]
    if "canonical_e164" in expected:
        assert facts.e164 == expected["canonical_e164"]
        assert (facts.e164 == case["e164"]) == expected["input_is_canonical_e164"]
    for key, valid_for in expected.items():
        if key.startswith("valid_for_region_"):
            assert (facts.region == key.removeprefix("valid_for_region_")) == valid_for


def test_test_metadata_case_is_flagged_and_disagrees_with_real_metadata() -> None:
    """T-IT-too-long is invalid only under libphonenumber's test metadata, as the file says."""
    (case,) = [c for c in CASES if c["id"] == "T-IT-too-long"]
    facts = phones.describe(phonenumbers.parse(case["e164"], None))
    assert case["expected"]["valid"] is False
    assert facts.valid is True and facts.number_type == "FIXED_LINE"


@pytest.mark.parametrize("case", CASES, ids=_ids)
def test_vector_sms_decision(case: dict[str, Any]) -> None:
    refusal = DECISIONS[case["id"]]
    parsed = _parsed(case)

    def decide() -> phones.PhoneNumber:
        if case["e164"] is None and parsed is not None:
            return phones.accept(parsed)
        return phones.normalize(case["e164"])

    if refusal is None:
        number = decide()
        assert number.e164 == case["expected"].get("canonical_e164", case["e164"])
        return
    with pytest.raises(phones.InvalidPhoneNumber, match=re.escape(refusal)):
        decide()


@pytest.mark.parametrize(
    ("typed", "region", "e164"),
    [
        ("(415) 555-2671", "US", "+14155552671"),
        ("415.555.2671", "US", "+14155552671"),
        ("1-415-555-2671", "US", "+14155552671"),
        ("+1 415 555 2671", None, "+14155552671"),
        ("07400 123456", "GB", "+447400123456"),
        ("07400 123456", "gb", "+447400123456"),
        ("+44 (0)7400 123456", None, "+447400123456"),
        ("00 44 7400 123456", "FR", "+447400123456"),
        ("  +447400123456  ", None, "+447400123456"),
        ("081234 56789", "IN", "+918123456789"),
        ("+18005550199", None, "+18005550199"),  # US toll-free can be SMS-enabled
        ("+44 56 0123 4567", None, "+445601234567"),  # UK VoIP
    ],
)
def test_accepts_what_people_type(typed: str, region: str | None, e164: str) -> None:
    assert phones.normalize(typed, region).e164 == e164


@pytest.mark.parametrize(
    "number",
    ["+15005550006", "+15005550001", "+15005550009", "+15005550007", "+15005550008"],
)
def test_twilio_test_numbers_are_accepted(number: str) -> None:
    result = phones.normalize(number)
    assert (result.e164, result.region) == (number, "US")
    assert phones.is_test_number(number)


@pytest.mark.parametrize(
    ("typed", "region", "reason"),
    [
        ("", None, "is empty"),
        ("   ", "US", "is empty"),
        ("not a number", "US", "is not a phone number"),
        ("4155552671", None, "no country code"),
        ("+999 1234567", None, "unknown country calling code"),
        ("+19005550123", None, "premium-rate"),
        ("+44 909 879 0000", None, "premium-rate"),
        ("+442071838750", None, "fixed-line"),
        ("+44 800 123 4567", None, "toll-free number outside the US and Canada"),
        ("911", "US", "short code or service number"),
        ("112", "GB", "short code or service number"),
        ("+1415555", None, "short code or service number"),
        ("+1 415 555 2671 ext. 5", None, "extension"),
        ("+44791234567", None, "not a valid +44 number"),
        ("+4474001234567890", None, "too long"),
    ],
)
def test_refuses_with_the_reason(typed: str, region: str | None, reason: str) -> None:
    with pytest.raises(phones.InvalidPhoneNumber, match=re.escape(reason)):
        phones.normalize(typed, region)


def test_refusal_never_echoes_the_whole_number() -> None:
    with pytest.raises(phones.InvalidPhoneNumber) as caught:
        phones.normalize("+442071838750")
    assert "2071838750" not in str(caught.value)
    assert "8750" in str(caught.value)


@settings(max_examples=400, deadline=None)
@given(
    calling_code=st.sampled_from(sorted(phonenumbers.COUNTRY_CODE_TO_REGION_CODE)),
    national=st.integers(min_value=0, max_value=10**15),
)
def test_validity_is_what_libphonenumber_says(calling_code: int, national: int) -> None:
    """`describe` derives validity from the number's type; it must agree with is_valid_number."""
    parsed = phonenumbers.PhoneNumber(country_code=calling_code, national_number=national)
    facts = phones.describe(parsed)
    assert facts.valid == phonenumbers.is_valid_number(parsed)
    assert facts.number_type == phonenumbers.PhoneNumberType.to_string(
        phonenumbers.number_type(parsed)
    )


@pytest.mark.parametrize(
    "e164", ["+14155552671", "+447911123456", "+919876543210", "+4915112345678", "+80012345678"]
)
def test_validity_of_real_numbers_is_what_libphonenumber_says(e164: str) -> None:
    parsed = phonenumbers.parse(e164)
    assert phones.describe(parsed).valid == phonenumbers.is_valid_number(parsed)


def test_validity_of_every_example_number_is_what_libphonenumber_says() -> None:
    """Each region's example number of each type (all valid), and each one cut short."""
    checked = 0
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for kind in range(phonenumbers.PhoneNumberType.UNKNOWN):
            example = phonenumbers.example_number_for_type(region, kind)
            if example is None:
                continue
            shorter = phonenumbers.PhoneNumber(
                country_code=example.country_code, national_number=example.national_number // 10
            )
            for parsed in (example, shorter):
                assert phones.describe(parsed).valid == phonenumbers.is_valid_number(parsed)
                checked += 1
    assert checked > 2000
