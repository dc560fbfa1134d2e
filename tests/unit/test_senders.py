"""Senders: classifying sender strings and the per-country rules shipped as data."""

from __future__ import annotations

import json
import re
from importlib import resources
from typing import Any, get_args

import pytest

from smsrelay.domain import senders
from smsrelay.domain.senders import InvalidSender, SenderKind

SID = "MG" + "0123456789abcdef" * 2


@pytest.mark.parametrize(
    ("value", "kind", "canonical", "region"),
    [
        ("+15005550006", "long_code", "+15005550006", "US"),
        ("+1 500 555 0001", "long_code", "+15005550001", "US"),
        ("+15062345678", "long_code", "+15062345678", "CA"),
        ("+447400123456", "long_code", "+447400123456", "GB"),
        ("+18005550199", "toll_free", "+18005550199", "US"),
        ("+1 (844) 555-0123", "toll_free", "+18445550123", "US"),
        ("123", "short_code", "123", None),
        ("12345", "short_code", "12345", None),
        ("12345678", "short_code", "12345678", None),
        ("A", "alphanumeric", "A", None),
        ("ACME", "alphanumeric", "ACME", None),
        ("Acme Ltd", "alphanumeric", "Acme Ltd", None),
        ("ACME-2FA_&+", "alphanumeric", "ACME-2FA_&+", None),
        ("1ACME", "alphanumeric", "1ACME", None),
        ("MG123", "alphanumeric", "MG123", None),
        (SID, "messaging_service", SID, None),
        ("MG" + "A" * 32, "messaging_service", "MG" + "A" * 32, None),
        (f"  {SID} ", "messaging_service", SID, None),
    ],
)
def test_classify(value: str, kind: str, canonical: str, region: str | None) -> None:
    sender = senders.classify_sender(value)
    assert (sender.kind, sender.value, sender.region) == (kind, canonical, region)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "is empty"),
        ("12", "not a short code (3 to 8 digits)"),
        ("123456789", "not a short code (3 to 8 digits)"),
        ("15005550006", "E.164 with its +"),
        ("ACME CORPORATION", "longer than 11 characters"),
        ("MG" + "g" * 32, "looks like a Messaging Service SID"),
        ("MG" + "0" * 31, "looks like a Messaging Service SID"),
        ("ACME!", "is not a sender"),
        ("Ünïcode", "is not a sender"),
        ("+1234", "not a valid phone number"),
        ("+ACME", "not a phone number in E.164 form"),
    ],
)
def test_classify_refuses(value: str, reason: str) -> None:
    with pytest.raises(InvalidSender, match=re.escape(reason)):
        senders.classify_sender(value)


ALLOWED = None
# (destination country, sender) -> None when allowed, else a phrase of the refusal.
RULE_CASES: list[tuple[str | None, str, str | None]] = [
    ("US", "+15005550001", ALLOWED),
    ("US", "+15062345678", ALLOWED),  # Canadian long codes reach the US
    ("US", "+18005550199", ALLOWED),
    ("US", "12345", ALLOWED),
    ("US", SID, ALLOWED),
    ("US", "ACME", "alphanumeric sender ID, which cannot send to numbers in the United States"),
    ("US", "+447400123456", "is a number from GB"),
    ("CA", "+15005550006", ALLOWED),
    ("CA", "ACME", "cannot send to numbers in Canada"),
    ("GB", "ACME", ALLOWED),
    ("GB", "60000", ALLOWED),
    ("GB", SID, ALLOWED),
    ("GB", "+15005550006", "long code (phone number), which cannot send to numbers in the United"),
    ("GB", "+18005550199", "toll-free number, which cannot send"),
    ("IN", "ACMEIN", ALLOWED),
    ("IN", "ACME", "exactly 6 characters"),
    ("IN", "ACMEIND", "exactly 6 characters"),
    ("IN", "+15005550006", "cannot send to numbers in India"),
    ("IN", "56161", "cannot send to numbers in India"),
    ("IN", SID, "cannot send to numbers in India"),
    ("NG", "ACME", ALLOWED),
    ("NG", "+15005550006", "cannot send to numbers in Nigeria"),
    ("KE", "ACME", ALLOWED),
    ("KE", "12345", "cannot send to numbers in Kenya"),
    ("TZ", "ACME", ALLOWED),
    ("TZ", "+447400123456", "cannot send to numbers in Tanzania"),
    ("UG", "ACME", ALLOWED),
    ("UG", "+15005550006", "cannot send to numbers in Uganda"),
    ("GH", "ACME", ALLOWED),
    ("GH", "+15005550006", "cannot send to numbers in Ghana"),
    ("ET", "+15005550006", "cannot send to numbers in Ethiopia"),
    ("ZM", "+15005550006", "cannot send to numbers in Zambia"),
    ("CI", "+15005550006", "cannot send to numbers in Côte d'Ivoire"),
    ("DE", "+15005550006", ALLOWED),  # no rule for DE: the '*' rule
    ("DE", "ACME", ALLOWED),
    ("DE", SID, ALLOWED),
    ("DE", "12345", "short code, which cannot send to numbers in DE"),
    ("DE", "+18005550199", "toll-free number, which cannot send"),
    (None, "ACME", ALLOWED),
    ("001", "12345", "short code, which cannot send"),
]


@pytest.mark.parametrize(("country", "value", "refusal"), RULE_CASES)
def test_country_rules(country: str | None, value: str, refusal: str | None) -> None:
    rules = senders.shipped_rules()
    if refusal is None:
        choice = senders.choose_sender(value, country, rules)
        assert choice.sender is not None and choice.source == "request"
        return
    with pytest.raises(InvalidSender, match=re.escape(refusal)):
        senders.choose_sender(value, country, rules)


@pytest.mark.parametrize("given", [None, "", "   "])
def test_no_sender_leaves_the_provider_default(given: str | None) -> None:
    choice = senders.choose_sender(given, "US", senders.shipped_rules())
    assert choice.sender is None and choice.source == "provider_default"
    assert choice.rule.country == "US"


def _table(**overrides: Any) -> dict[str, Any]:
    base = {
        "country": "IN",
        "name": "India",
        "allowed": ["alphanumeric"],
        "alphanumericLength": 6,
        "registrationRequired": True,
        "registration": "DLT",
        "defaultSender": "ACMEIN",
        "route": "msg91",
        "source": "test",
        "date": "2026-11",
    }
    fallback = {**base, "country": "*", "name": "this country", "defaultSender": None}
    return {"countries": [{**base, **overrides}, fallback]}


def test_country_default_is_used_when_no_sender_is_given() -> None:
    rules = senders.rules_from(_table())
    choice = senders.choose_sender(None, "IN", rules)
    assert choice.sender == senders.Sender("ACMEIN", "alphanumeric")
    assert choice.source == "country_default"
    assert senders.choose_sender(None, "GB", rules).source == "provider_default"


def test_a_given_sender_wins_over_the_country_default() -> None:
    choice = senders.choose_sender("OTHERS", "IN", senders.rules_from(_table()))
    assert choice.sender is not None and choice.sender.value == "OTHERS"


def test_unknown_kind_in_rules_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown kinds"):
        senders.rules_from(_table(allowed=["carrier_pigeon"]))


def _shipped() -> list[dict[str, Any]]:
    text = resources.files("smsrelay.domain").joinpath("data", "senders.json").read_text("utf-8")
    entries: list[dict[str, Any]] = json.loads(text)["countries"]
    return entries


@pytest.mark.parametrize("entry", _shipped(), ids=lambda entry: entry["country"])
def test_every_shipped_rule_is_sourced_and_consistent(entry: dict[str, Any]) -> None:
    assert entry["source"] and entry["date"] and entry["registration"]
    assert entry["country"] == "*" or re.fullmatch(r"[A-Z]{2}", entry["country"])
    assert set(entry["allowed"]) <= set(get_args(SenderKind))
    rules = senders.shipped_rules()
    rule = rules.for_country(None if entry["country"] == "*" else entry["country"])
    if rule.default_sender is not None:
        senders.check_sender(senders.classify_sender(rule.default_sender), rule, rule.country)


def test_shipped_rules_cover_the_spec_countries() -> None:
    rules = senders.shipped_rules()
    assert {"US", "CA", "GB", "IN", "NG", "KE"} <= set(rules.by_country)
    assert rules.for_country("IN").route == "msg91"
    assert rules.for_country("IN").alphanumeric_length == 6


@pytest.mark.parametrize(
    ("country", "provider", "phrases"),
    [
        ("IN", "twilio", ["India needs a registered sender", "normally sent through msg91"]),
        ("IN", "msg91", ["India needs a registered sender"]),
        ("NG", "twilio", ["Nigeria needs a registered sender"]),
        ("DE", "twilio", []),
    ],
)
def test_sender_notes(country: str, provider: str, phrases: list[str]) -> None:
    choice = senders.choose_sender(None, country, senders.shipped_rules())
    notes = senders.sender_notes(choice, provider)
    assert len(notes) == len(phrases)
    for note, phrase in zip(notes, phrases, strict=True):
        assert phrase in note
