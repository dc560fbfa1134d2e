"""Twilio's vocabularies as data: error codes to outcomes, and MessageStatus to our statuses."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from smsrelay.domain.status import Status
from smsrelay.providers.base import Outcome
from smsrelay.providers.twilio import TWILIO_ERROR_CODES, TWILIO_STATUSES, classify, our_status
from smsrelay.providers.twilio.error_codes import more_info_url

VECTORS = Path(__file__).resolve().parents[2].parent / "shared" / "vectors"


def _vector(name: str) -> Any:
    return json.loads((VECTORS / name).read_text(encoding="utf-8"))


ERRORS = _vector("twilio_errors.json")
_HTTP_HINTS = {
    int(k): v["http_status"] for k, v in ERRORS["http_status_hints"].items() if k.isdigit()
}

# The vector's classes (derived by the research helper except 20429) turned into outcomes.
_OUTCOME_BY_CLASS = {
    "transient_rate_limit": Outcome.RETRYABLE,  # 20429, source-explicit
    "permanent_opted_out": Outcome.OPTED_OUT,  # 21610
}
# product.md §2 lists 30003-30008 as permanent, settling the two classes the vector leaves open.
_SPEC_PERMANENT = {30003, 30008}


def _expected_outcome(entry: dict[str, Any]) -> Outcome:
    kind = entry["classification"]["class"]
    if kind in _OUTCOME_BY_CLASS:
        return _OUTCOME_BY_CLASS[kind]
    if "permanent" in kind or entry["code"] in _SPEC_PERMANENT:
        return Outcome.PERMANENT
    raise AssertionError(f"no expectation for class {kind!r} of {entry['code']}")


@pytest.mark.parametrize("entry", ERRORS["primary_codes"], ids=lambda e: str(e["code"]))
def test_primary_codes_follow_the_vector(entry: dict[str, Any]):
    code = entry["code"]
    http_status = _HTTP_HINTS.get(code, 400)

    assert code in TWILIO_ERROR_CODES
    assert classify(code, http_status) is _expected_outcome(entry)
    assert classify(code, None) is _expected_outcome(entry)  # as a delivery callback reports it


@pytest.mark.parametrize(
    ("code", "outcome"),
    [
        (30001, Outcome.RETRYABLE),  # queue overflow: never left Twilio (product.md §2)
        (21611, Outcome.RETRYABLE),  # From queue full: rejected at create, queue drains
        (21212, Outcome.PERMANENT),
        (21606, Outcome.PERMANENT),
        (21608, Outcome.PERMANENT),
        (21658, Outcome.PERMANENT),
    ],
)
def test_related_codes(code: int, outcome: Outcome):
    related = {entry["code"] for entry in ERRORS["related_codes_brief"]}

    assert code in related
    assert classify(code, 400) is outcome


@pytest.mark.parametrize(
    ("code", "http_status", "outcome"),
    [
        (None, 400, Outcome.PERMANENT),
        (None, 401, Outcome.PERMANENT),
        (None, 404, Outcome.PERMANENT),
        (None, 429, Outcome.RETRYABLE),
        (None, 500, Outcome.AMBIGUOUS),
        (None, 503, Outcome.AMBIGUOUS),
        (None, None, Outcome.PERMANENT),
        (99999, 400, Outcome.PERMANENT),
        (99999, 502, Outcome.AMBIGUOUS),
        (99999, None, Outcome.PERMANENT),
        (21211, 500, Outcome.PERMANENT),  # a known code wins over the HTTP status
    ],
)
def test_fallback_by_http_status(code: int | None, http_status: int | None, outcome: Outcome):
    assert classify(code, http_status) is outcome


@pytest.mark.parametrize("code", sorted(TWILIO_ERROR_CODES))
def test_every_entry_has_a_reason_and_a_source(code: int):
    entry = TWILIO_ERROR_CODES[code]

    assert entry.reason
    assert len(entry.source) > 20


def test_more_info_url():
    assert more_info_url(21610) == "https://www.twilio.com/docs/errors/21610"


# -- statuses ------------------------------------------------------------------------------

STATUS_ENUM = _vector("twilio_messages_schema.json")["message_status_enum"]

EXPECTED_STATUS = {
    "queued": Status.SENT,
    "accepted": Status.SENT,
    "scheduled": Status.SENT,
    "sending": Status.SENT,
    "sent": Status.SENT,
    "delivered": Status.DELIVERED,
    "read": Status.DELIVERED,
    "partially_delivered": Status.DELIVERED,
    "undelivered": Status.UNDELIVERED,
    "failed": Status.FAILED,
    "canceled": Status.CANCELED,
    "receiving": None,
    "received": None,
}


def test_the_table_covers_exactly_twilios_enum():
    assert len(STATUS_ENUM) == 13
    assert set(TWILIO_STATUSES) == set(STATUS_ENUM) == set(EXPECTED_STATUS)


@pytest.mark.parametrize("twilio_status", STATUS_ENUM)
def test_status_mapping(twilio_status: str):
    assert our_status(twilio_status) == EXPECTED_STATUS[twilio_status]


@pytest.mark.parametrize("raw", ["Delivered", " sent ", "UNDELIVERED"])
def test_status_lookup_is_forgiving(raw: str):
    assert our_status(raw) == EXPECTED_STATUS[raw.strip().lower()]


def test_unknown_status_is_none():
    assert our_status("teleported") is None
