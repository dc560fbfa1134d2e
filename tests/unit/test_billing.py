"""Money in millionths, the refund and alert rules, and the alert retry backoff."""

from __future__ import annotations

from decimal import Decimal

import pytest

from smsrelay.domain import billing
from smsrelay.domain.status import Status


@pytest.mark.parametrize(
    ("text", "micros"),
    [("1", 1_000_000), ("0.0083", 8_300), ("10.50", 10_500_000), ("0.000001", 1)],
)
def test_amounts_are_exact_millionths(text: str, micros: int) -> None:
    assert billing.to_micros(billing.parse_amount(text)) == micros


@pytest.mark.parametrize(
    ("micros", "text"), [(1_500_000, "1.5"), (0, "0"), (-8_300, "-0.0083"), (10_000_000, "10")]
)
def test_millionths_print_without_trailing_zeros(micros: int, text: str) -> None:
    assert billing.format_micros(micros) == text


@pytest.mark.parametrize("text", ["", "abc", "-1", "0", "1.0000001", "NaN", "inf", "1e12"])
def test_bad_amounts_are_refused(text: str) -> None:
    with pytest.raises(billing.InvalidAmount):
        billing.parse_amount(text)


def test_zero_is_a_valid_threshold() -> None:
    assert billing.parse_amount("0", allow_zero=True) == Decimal(0)


@pytest.mark.parametrize(
    ("status", "provider_id", "refunded"),
    [
        (Status.SUPPRESSED, None, True),
        (Status.EXPIRED, None, True),
        (Status.CANCELED, "SM1", True),
        (Status.FAILED, None, True),
        (Status.FAILED, "SM1", False),
        (Status.UNDELIVERED, "SM1", False),
        (Status.DELIVERED, "SM1", False),
    ],
)
def test_refunds_go_to_sends_the_provider_never_accepted(
    status: Status, provider_id: str | None, refunded: bool
) -> None:
    assert billing.is_refunded(status, provider_id) is refunded


def test_only_failed_and_undelivered_raise_failed_sms_alerts() -> None:
    assert {Status.FAILED, Status.UNDELIVERED} == billing.ALERTED_FAILURES


def test_low_needs_a_threshold() -> None:
    assert billing.is_low(5, 10) and not billing.is_low(10, 10) and not billing.is_low(-5, None)


def test_backoff_doubles_up_to_the_cap() -> None:
    assert [billing.retry_delay(n) for n in (1, 2, 3)] == [5.0, 10.0, 20.0]
    assert billing.retry_delay(30) == 3600.0


def test_costs_round_up_to_a_whole_millionth() -> None:
    assert billing.cost_micros(Decimal("0.0166")) == 16_600
    assert billing.cost_micros(Decimal("0.00000001")) == 1
