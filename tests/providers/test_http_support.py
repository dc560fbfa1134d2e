"""Retry-After as the aiohttp adapters read it: seconds or an HTTP date, kept only to retry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from smsrelay.providers.base import Outcome
from smsrelay.providers.http_support import retry_after_for, seconds_from_retry_after

RETRY_AFTER = [
    # (header value, seconds it asks for)
    ("7", 7.0),
    ("0", 0.0),
    ("1.5", 1.5),
    ("-3", 0.0),  # never a wait in the past
    ("inf", None),
    ("nan", None),
    ("soon", None),
    ("", None),
    (None, None),
    ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),  # an HTTP date already past
]


@pytest.mark.parametrize(("value", "seconds"), RETRY_AFTER)
def test_retry_after_values(value: str | None, seconds: float | None) -> None:
    assert seconds_from_retry_after(value) == seconds


def test_retry_after_as_a_future_http_date() -> None:
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)

    seconds = seconds_from_retry_after(later)

    assert seconds is not None
    assert 100 < seconds <= 120


@pytest.mark.parametrize("outcome", [o for o in Outcome if o is not Outcome.RETRYABLE])
def test_retry_after_is_kept_only_for_a_retry(outcome: Outcome) -> None:
    assert retry_after_for(Outcome.RETRYABLE, "30") == 30.0
    assert retry_after_for(outcome, "30") is None
