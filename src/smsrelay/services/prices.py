"""A tenant's own prices per segment, applied at submit and preview; the provider's billed price."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from functools import partial

import phonenumbers
from sqlalchemy.engine import RowMapping

from smsrelay.domain import pricing
from smsrelay.providers.registry import TENANT_CONFIGS
from smsrelay.services.errors import InvalidRequest, NotFound
from smsrelay.services.provider_configs import routed_policy
from smsrelay.services.read_cache import ReadCache
from smsrelay.services.submit import SubmitPolicy
from smsrelay.store.database import Database
from smsrelay.store.outbox import OutboxRepository
from smsrelay.store.prices import TenantPriceRepository
from smsrelay.store.provider_configs import ProviderConfigRepository

_AMOUNT = re.compile(r"\d{1,12}(\.\d{1,6})?")
_CURRENCY = re.compile(r"[A-Za-z]{3}")
DEFAULT_SOURCE = "tenant override"


@dataclass(frozen=True, slots=True)
class PriceInput:
    provider: str
    country: str
    per_segment: str
    currency: str
    source: str | None = None


@dataclass(frozen=True, slots=True)
class TenantPrice:
    provider: str
    country: str
    per_segment: str
    currency: str
    source: str
    updated_at: datetime


async def set_tenant_price(
    db: Database, tenant_id: str, given: PriceInput, now: datetime
) -> TenantPrice:
    """Validate and store the tenant's price for one provider and country (replacing any).

    `NotFound` for a provider the price table does not know (a typo would otherwise be stored
    and never used); `InvalidRequest` naming the field for a malformed price.
    """
    price = _validated(given, now)
    values = {"per_segment": price.per_segment, "currency": price.currency, "source": price.source}
    async with db.transaction() as connection:
        await TenantPriceRepository(connection).save(
            tenant_id, price.provider, price.country, values, now
        )
    return price


async def list_tenant_prices(db: Database, tenant_id: str) -> list[TenantPrice]:
    async with db.reading() as connection:
        rows = await TenantPriceRepository(connection).all(tenant_id)
    return [_tenant_price(row) for row in rows]


async def delete_tenant_price(db: Database, tenant_id: str, provider: str, country: str) -> None:
    """Remove an override (the shipped price applies again); `NotFound` when there is none."""
    _known(provider)
    country = _country(country)
    async with db.transaction() as connection:
        removed = await TenantPriceRepository(connection).remove(tenant_id, provider, country)
    if not removed:
        raise NotFound(f"no price override for provider {provider!r} to {country}")


async def tenant_policy(db: Database, policy: SubmitPolicy, tenant_id: str) -> SubmitPolicy:
    """`policy` with the tenant's verified providers routed and its prices over the table's."""
    return (await read_tenant_terms(db, tenant_id)).apply(policy)


@dataclass(frozen=True, slots=True)
class TenantTerms:
    """What a tenant changes in the submit policy: its verified providers and its own prices."""

    verified: frozenset[str]
    prices: Mapping[pricing.PriceKey, pricing.Price]

    def apply(self, policy: SubmitPolicy) -> SubmitPolicy:
        policy = routed_policy(policy, set(self.verified), TENANT_CONFIGS)
        if not self.prices:
            return policy
        return replace(policy, price_overrides={**(policy.price_overrides or {}), **self.prices})


async def read_tenant_terms(db: Database, tenant_id: str) -> TenantTerms:
    """The tenant's terms, in one read transaction."""
    async with db.reading() as connection:
        configs = await ProviderConfigRepository(connection).all(tenant_id, verified_only=True)
        rows = await TenantPriceRepository(connection).all(tenant_id)
    own = {
        (row["provider"], row["country"]): pricing.Price(
            Decimal(row["per_segment"]), row["currency"], row["source"]
        )
        for row in rows
    }
    return TenantTerms(frozenset(row["provider"] for row in configs), own)


# How long a tenant's terms are used without reading them again (see `TenantPolicies`).
TERMS_CACHE_SECONDS = 2.0


@dataclass
class TenantPolicies:
    """Each tenant's submit policy with no database read per send: its terms are read at most
    once every `TERMS_CACHE_SECONDS` (services/read_cache.py). A price or provider account
    changed through this process applies at once (`forget`)."""

    db: Database
    terms: ReadCache[str, TenantTerms] = field(
        default_factory=lambda: ReadCache(TERMS_CACHE_SECONDS)
    )

    async def policy(self, base: SubmitPolicy, tenant_id: str) -> SubmitPolicy:
        """`tenant_policy(db, base, tenant_id)`, from terms at most seconds old."""
        terms = await self.terms.get(tenant_id, partial(read_tenant_terms, self.db, tenant_id))
        return terms.apply(base)

    def forget(self, tenant_id: str) -> None:
        """Read the tenant's terms again on its next send (they just changed here)."""
        self.terms.forget(tenant_id)


async def record_provider_price(
    db: Database, outbox_id: str, reported: str | None, unit: str | None
) -> bool:
    """Store what the provider billed for a message beside the estimate; False if not known."""
    cost = pricing.provider_cost(reported)
    if cost is None:
        return False
    async with db.transaction() as connection:
        await OutboxRepository(connection).update(
            outbox_id,
            provider_price=str(cost),
            provider_price_unit=(unit or "").upper()[:3] or None,
        )
    return True


def _known(provider: str) -> None:
    known = pricing.priced_providers()
    if provider not in known:
        raise NotFound(f"no provider {provider!r}; use one of {', '.join(sorted(known))}")


def _validated(given: PriceInput, now: datetime) -> TenantPrice:
    _known(given.provider)
    if not _AMOUNT.fullmatch(given.per_segment):
        raise InvalidRequest(
            "perSegment", "must be a non-negative decimal string with at most 6 decimal places"
        )
    if not _CURRENCY.fullmatch(given.currency):
        raise InvalidRequest("currency", "must be a 3-letter ISO 4217 code such as 'USD'")
    source = (given.source or "").strip() or DEFAULT_SOURCE
    return TenantPrice(
        given.provider,
        _country(given.country),
        given.per_segment,
        given.currency.upper(),
        source,
        now,
    )


def _country(code: str) -> str:
    upper = code.upper()
    if len(upper) != 2 or upper not in phonenumbers.SUPPORTED_REGIONS:
        raise InvalidRequest("country", "must be an ISO 3166-1 alpha-2 code such as 'US'")
    return upper


def _tenant_price(row: RowMapping) -> TenantPrice:
    return TenantPrice(
        row["provider"],
        row["country"],
        row["per_segment"],
        row["currency"],
        row["source"],
        row["updated_at"],
    )
