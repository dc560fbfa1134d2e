"""Bodies of the price override API (`/api/prices`), in camelCase."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from smsrelay.api.schemas import ApiModel
from smsrelay.services.prices import TenantPrice


class PriceIn(ApiModel):
    per_segment: str = Field(
        max_length=24, description="Price of one segment as a decimal string, e.g. '0.0079'"
    )
    currency: str = Field(max_length=8, description="ISO 4217 code, e.g. 'USD'")
    source: str | None = Field(default=None, max_length=200, description="Where the figure is from")


class PriceOut(ApiModel):
    provider: str
    country: str
    per_segment: str
    currency: str
    source: str
    updated_at: datetime


class PriceListOut(ApiModel):
    items: list[PriceOut]


def price_out(price: TenantPrice) -> PriceOut:
    return PriceOut(
        provider=price.provider,
        country=price.country,
        per_segment=price.per_segment,
        currency=price.currency,
        source=price.source,
        updated_at=price.updated_at,
    )
