"""Sender IDs: what kind a sender string is, and whether a destination country accepts it."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, Final, Literal, cast, get_args

import phonenumbers

from smsrelay.domain import phones

__all__ = [
    "CountryRule",
    "InvalidSender",
    "Sender",
    "SenderChoice",
    "SenderKind",
    "SenderRules",
    "check_sender",
    "choose_sender",
    "classify_sender",
    "rules_from",
    "sender_notes",
    "shipped_rules",
]

SenderKind = Literal["long_code", "toll_free", "short_code", "alphanumeric", "messaging_service"]
SenderSource = Literal["request", "country_default", "provider_default"]

KIND_LABELS: Final[Mapping[SenderKind, str]] = {
    "long_code": "a long code (phone number)",
    "toll_free": "a toll-free number",
    "short_code": "a short code",
    "alphanumeric": "an alphanumeric sender ID",
    "messaging_service": "a Messaging Service",
}

# Twilio resource SIDs: two-letter prefix + 32 hex digits (twilio.com/docs/glossary/what-is-a-sid).
_MESSAGING_SERVICE_SID: Final = re.compile(r"MG[0-9a-fA-F]{32}")
# Short codes: 3-8 digits covers national short-code plans (US/CA 5-6, UK 5, others 3-8).
_SHORT_CODE: Final = re.compile(r"[0-9]{3,8}")
# Alphanumeric sender IDs: up to 11 of A-Z a-z 0-9 space - + _ & and not digits only
# (messaging.twilio.com/v1 AlphaSenders: "Can be up to 11 characters ... cannot contain only
# numbers"; GSM 03.40 TP-OA holds at most 11 GSM-7 characters).
_ALPHANUMERIC: Final = re.compile(r"[A-Za-z0-9 +_&-]{1,11}")
_LETTER: Final = re.compile(r"[A-Za-z]")
_ALPHANUMERIC_MAX: Final = 11


class InvalidSender(ValueError):
    """The sender cannot be used (for this destination); the message says why."""


@dataclass(frozen=True, slots=True)
class Sender:
    """A sender string in canonical form (E.164 for numbers) with its kind and number region."""

    value: str
    kind: SenderKind
    region: str | None = None


@dataclass(frozen=True, slots=True)
class CountryRule:
    """Which senders may send to one country's numbers, and what must be registered first."""

    country: str
    name: str
    allowed: frozenset[SenderKind]
    registration_required: bool
    registration: str
    source: str
    number_countries: frozenset[str] | None = None
    alphanumeric_length: int | None = None
    default_sender: str | None = None
    route: str | None = None


@dataclass(frozen=True, slots=True)
class SenderRules:
    by_country: Mapping[str, CountryRule]
    fallback: CountryRule

    def for_country(self, region: str | None) -> CountryRule:
        return self.by_country.get(region or "", self.fallback)


@dataclass(frozen=True, slots=True)
class SenderChoice:
    """The sender a message will use (None: the provider's default) and where it came from."""

    sender: Sender | None
    source: SenderSource
    rule: CountryRule


def choose_sender(sender_id: str | None, region: str | None, rules: SenderRules) -> SenderChoice:
    """The sender for a message to `region`; `InvalidSender` when the given one is not allowed.

    The rules are data (``data/senders.json``, a source and date per country; ``*`` covers the
    countries not listed). No sender given: the country's default, else the provider's.
    """
    rule = rules.for_country(region)
    if sender_id is not None and sender_id.strip():
        sender = classify_sender(sender_id)
        check_sender(sender, rule, region)
        return SenderChoice(sender, "request", rule)
    if rule.default_sender is not None:
        return SenderChoice(classify_sender(rule.default_sender), "country_default", rule)
    return SenderChoice(None, "provider_default", rule)


def classify_sender(value: str) -> Sender:
    """The kind of `value`, or `InvalidSender` when it is no kind of sender."""
    text = value.strip()
    if _MESSAGING_SERVICE_SID.fullmatch(text):
        return Sender(text, "messaging_service")
    if text.startswith("+"):
        return _number_sender(text)
    if _SHORT_CODE.fullmatch(text):
        return Sender(text, "short_code")
    if _ALPHANUMERIC.fullmatch(text) and _LETTER.search(text):
        return Sender(text, "alphanumeric")
    raise InvalidSender(f"{text!r} {_unrecognised(text)}")


def check_sender(sender: Sender, rule: CountryRule, region: str | None = None) -> None:
    """Raise `InvalidSender` when `rule` does not let `sender` send to numbers in `region`."""
    where = _where(rule, region)
    if sender.kind not in rule.allowed:
        allowed = " or ".join(KIND_LABELS[kind] for kind in sorted(rule.allowed))
        raise InvalidSender(
            f"{sender.value!r} is {KIND_LABELS[sender.kind]}, which cannot send to numbers in "
            f"{where}; use {allowed}"
        )
    _check_length(sender, rule, where)
    _check_number_country(sender, rule, where)


def sender_notes(choice: SenderChoice, provider: str) -> list[str]:
    """What a caller should know about the sender before sending (registration, routing)."""
    rule = choice.rule
    notes = []
    if rule.registration_required:
        notes.append(f"{_capitalised(rule.name)} needs a registered sender — {rule.registration}")
    if rule.route is not None and rule.route != provider:
        notes.append(
            f"{_capitalised(rule.name)} is normally sent through {rule.route}; "
            f"this deployment sends through {provider}"
        )
    return notes


def rules_from(data: Mapping[str, Any]) -> SenderRules:
    """Sender rules from their JSON form (see ``data/senders.json``)."""
    rules = {entry["country"]: _rule(entry) for entry in data["countries"]}
    fallback = rules.pop("*")
    return SenderRules(by_country=rules, fallback=fallback)


@cache
def shipped_rules() -> SenderRules:
    """The rules shipped in ``data/senders.json``."""
    data = resources.files("smsrelay.domain").joinpath("data", "senders.json").read_text("utf-8")
    return rules_from(json.loads(data))


def _rule(entry: Mapping[str, Any]) -> CountryRule:
    kinds = set(get_args(SenderKind))
    unknown = set(entry["allowed"]) - kinds
    if unknown:
        raise ValueError(f"sender rule {entry['country']}: unknown kinds {sorted(unknown)}")
    number_countries = entry.get("numberCountries")
    return CountryRule(
        country=entry["country"],
        name=entry["name"],
        allowed=frozenset(cast(list[SenderKind], entry["allowed"])),
        registration_required=bool(entry["registrationRequired"]),
        registration=entry["registration"],
        source=f"{entry['source']} ({entry['date']})",
        number_countries=frozenset(number_countries) if number_countries else None,
        alphanumeric_length=entry.get("alphanumericLength"),
        default_sender=entry.get("defaultSender"),
        route=entry.get("route"),
    )


def _capitalised(name: str) -> str:
    return name[:1].upper() + name[1:]


def _number_sender(text: str) -> Sender:
    try:
        parsed = phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException:
        raise InvalidSender(f"{text!r} is not a phone number in E.164 form") from None
    facts = phones.describe(parsed)
    if not (facts.valid or phones.is_test_number(facts.e164)):
        raise InvalidSender(f"{text!r} is not a valid phone number")
    kind: SenderKind = "toll_free" if facts.number_type == "TOLL_FREE" else "long_code"
    return Sender(facts.e164, kind, facts.region)


def _unrecognised(text: str) -> str:
    if not text:
        return "is empty; leave senderId out to use the default sender"
    if text.startswith("MG") and len(text) > _ALPHANUMERIC_MAX:
        return "looks like a Messaging Service SID but is not MG followed by 32 hex digits"
    if text.isdigit():
        return "is not a short code (3 to 8 digits); write a phone number in E.164 with its +"
    if len(text) > _ALPHANUMERIC_MAX:
        return "is longer than 11 characters, the most an alphanumeric sender ID may have"
    return (
        "is not a sender: use an E.164 number (+14155550100), a 3-8 digit short code, "
        "an ID of up to 11 letters, digits, spaces or - + _ &, or a Messaging Service SID (MG…)"
    )


def _where(rule: CountryRule, region: str | None) -> str:
    if rule.country == "*":
        return region or "that destination"
    return f"{rule.name} ({rule.country})"


def _check_length(sender: Sender, rule: CountryRule, where: str) -> None:
    length = rule.alphanumeric_length
    if sender.kind == "alphanumeric" and length is not None and len(sender.value) != length:
        raise InvalidSender(
            f"{sender.value!r} has {len(sender.value)} characters; {where} "
            f"needs a registered header of exactly {length} characters"
        )


def _check_number_country(sender: Sender, rule: CountryRule, where: str) -> None:
    countries = rule.number_countries
    if sender.kind not in ("long_code", "toll_free") or countries is None:
        return
    if sender.region not in countries:
        raise InvalidSender(
            f"{sender.value!r} is a number from {sender.region or 'another country'}; numbers "
            f"in {where} accept number senders from {' and '.join(sorted(countries))} only"
        )
