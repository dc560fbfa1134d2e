"""Prices: the shipped table, aliases, overrides, the fallback and Decimal totals."""

from __future__ import annotations

import json
from decimal import Decimal
from importlib import resources

import pytest

from smsrelay.domain import pricing
from smsrelay.domain.pricing import Price


@pytest.mark.parametrize(
    ("provider", "region", "per_segment", "currency"),
    [
        ("twilio", "US", "0.0083", "USD"),
        ("twilio", "CA", "0.0083", "USD"),
        ("simulator", "US", "0.0083", "USD"),  # the simulator previews Twilio's prices
        ("msg91", "IN", "0.20", "INR"),
        ("twilio", "DE", "0.0500", "USD"),  # no price shipped: the deliberately high fallback
        ("twilio", None, "0.0500", "USD"),
        ("unknown", "US", "0.0500", "USD"),
    ],
)
def test_price_for(provider: str, region: str | None, per_segment: str, currency: str) -> None:
    price = pricing.price_for(provider, region)
    assert (price.per_segment, price.currency) == (Decimal(per_segment), currency)


def test_every_shipped_entry_names_its_source_and_date() -> None:
    text = resources.files("smsrelay.domain").joinpath("data", "prices.json").read_text("utf-8")
    data = json.loads(text)
    for entry in [*data["prices"], data["fallback"]]:
        assert entry["source"] and entry["date"], entry
        assert Decimal(entry["perSegment"]) > 0
        assert len(entry["currency"]) == 3
    for alias in data["aliases"]:
        assert alias["source"], alias


def test_the_price_says_where_it_comes_from() -> None:
    assert "Twilio" in pricing.price_for("twilio", "US").source
    assert "placeholder" in pricing.price_for("twilio", "ZZ").source


@pytest.mark.parametrize(
    ("overrides", "provider", "expected"),
    [
        ({("twilio", "US"): Price(Decimal("0.0050"), "USD")}, "twilio", "0.0050"),
        ({("twilio", "US"): Price(Decimal("0.0050"), "USD")}, "simulator", "0.0050"),
        ({("simulator", "US"): Price(Decimal("0.0010"), "USD")}, "simulator", "0.0010"),
        ({("twilio", "GB"): Price(Decimal("0.0400"), "USD")}, "twilio", "0.0083"),
        ({}, "twilio", "0.0083"),
    ],
)
def test_overrides_win_over_the_table(
    overrides: dict[pricing.PriceKey, Price], provider: str, expected: str
) -> None:
    assert pricing.price_for(provider, "US", overrides).per_segment == Decimal(expected)


def test_override_prices_a_country_the_table_lacks() -> None:
    overrides = {("twilio", "DE"): Price(Decimal("0.0920"), "EUR")}
    assert pricing.price_for("twilio", "DE", overrides) == overrides[("twilio", "DE")]


@pytest.mark.parametrize(
    ("per_segment", "segments", "total"),
    [
        ("0.0083", 1, "0.0083"),
        ("0.0083", 11, "0.0913"),
        ("0.0083", 24, "0.1992"),
        ("0.20", 3, "0.60"),
        ("0.1", 3, "0.3"),  # Decimal: no 0.30000000000000004
    ],
)
def test_total_cost_is_exact(per_segment: str, segments: int, total: str) -> None:
    cost = pricing.total_cost(Price(Decimal(per_segment), "USD"), segments)
    assert cost == Decimal(total) and str(cost) == total


@pytest.mark.parametrize(
    ("reported", "expected"),
    [("-0.00790", "0.00790"), ("0.0158", "0.0158"), (None, None), ("", None), ("NaN", None)],
)
def test_provider_cost_is_the_billed_amount_as_a_positive_decimal(
    reported: str | None, expected: str | None
) -> None:
    cost = pricing.provider_cost(reported)
    assert (None if cost is None else str(cost)) == expected


def test_cost_difference_needs_a_price_in_the_same_currency() -> None:
    assert pricing.cost_difference("0.00790", "0.0083", "usd", "USD") == Decimal("-0.00040")
    assert pricing.cost_difference("0.5", "0.0083", "EUR", "USD") is None
    assert pricing.cost_difference(None, "0.0083", None, "USD") is None
