"""Cost of a message: segments times the price per segment for its provider and country."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import cache
from importlib import resources
from typing import Any

__all__ = [
    "Price",
    "PriceKey",
    "PriceTable",
    "cost_difference",
    "price_for",
    "priced_providers",
    "provider_cost",
    "shipped_prices",
    "total_cost",
]

PriceKey = tuple[str, str]  # (provider name, ISO 3166-1 alpha-2 country)


@dataclass(frozen=True, slots=True)
class Price:
    """The price of one segment, in `currency`; `source` says where the figure comes from."""

    per_segment: Decimal
    currency: str
    source: str = ""


@dataclass(frozen=True, slots=True)
class PriceTable:
    prices: Mapping[PriceKey, Price]
    aliases: Mapping[str, str]
    fallback: Price


def price_for(
    provider: str,
    region: str | None,
    overrides: Mapping[PriceKey, Price] | None = None,
    table: PriceTable | None = None,
) -> Price:
    """The price per segment for `provider` to `region`: override, else table, else fallback.

    The shipped table is ``data/prices.json`` (a source and date per entry); `overrides` (a
    tenant's prices, keyed the same way) win over it; the fallback is deliberately high so a
    preview never under-states the cost.
    """
    table = table or shipped_prices()
    keys = _keys(provider, region or "", table.aliases)
    for prices in (overrides or {}, table.prices):
        for key in keys:
            if key in prices:
                return prices[key]
    return table.fallback


def total_cost(price: Price, segments: int) -> Decimal:
    return price.per_segment * segments


def provider_cost(reported: str | None) -> Decimal | None:
    """What the provider billed, as a non-negative amount (Twilio reports "-0.00790"); None if
    it has not said yet or said something that is not a number."""
    if reported is None:
        return None
    try:
        amount = Decimal(reported.strip())
    except InvalidOperation:
        return None
    return abs(amount) if amount.is_finite() else None


def cost_difference(
    provider_cost: str | None, estimate: str, provider_currency: str | None, currency: str
) -> Decimal | None:
    """The provider's cost minus our estimate, once known and in the same currency."""
    if provider_cost is None or (provider_currency or "").upper() != currency.upper():
        return None
    return Decimal(provider_cost) - Decimal(estimate)


@cache
def shipped_prices() -> PriceTable:
    """The table shipped in ``data/prices.json``."""
    data = json.loads(
        resources.files("smsrelay.domain").joinpath("data", "prices.json").read_text("utf-8")
    )
    return PriceTable(
        prices={(e["provider"], e["country"]): _price(e) for e in data["prices"]},
        aliases={a["provider"]: a["sameAs"] for a in data["aliases"]},
        fallback=_price(data["fallback"]),
    )


def priced_providers(table: PriceTable | None = None) -> frozenset[str]:
    """The providers the table prices (directly or as an alias): the ones a tenant may override."""
    table = table or shipped_prices()
    return frozenset(provider for provider, _ in table.prices) | frozenset(table.aliases)


def _keys(provider: str, region: str, aliases: Mapping[str, str]) -> list[PriceKey]:
    keys = [(provider, region)]
    if provider in aliases:
        keys.append((aliases[provider], region))
    return keys


def _price(entry: Mapping[str, Any]) -> Price:
    source = f"{entry['source']} ({entry['date']})"
    return Price(Decimal(entry["perSegment"]), entry["currency"], source)
