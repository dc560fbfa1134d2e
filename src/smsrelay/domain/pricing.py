"""Cost of a message: segments times the price per segment for its destination, in Decimal."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True, slots=True)
class Price:
    per_segment: Decimal
    currency: str


# Outbound SMS price per segment, before carrier fees. Estimates; a deployment overrides them.
# Source: Twilio's public SMS pricing pages (US and Canada long code), read 2025.
PRICES: dict[tuple[str, str], Price] = {
    ("twilio", "US"): Price(Decimal("0.0083"), "USD"),
    ("twilio", "CA"): Price(Decimal("0.0083"), "USD"),
    ("simulator", "US"): Price(Decimal("0.0083"), "USD"),
    ("simulator", "CA"): Price(Decimal("0.0083"), "USD"),
}
DEFAULT_PRICE = Price(Decimal("0.0500"), "USD")


def price_for(provider: str, region: str | None) -> Price:
    """The price per segment for `provider` to `region`, or the conservative default."""
    return PRICES.get((provider, region or ""), DEFAULT_PRICE)


def total_cost(price: Price, segments: int) -> Decimal:
    return price.per_segment * segments
