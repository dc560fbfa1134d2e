"""Repository of tenants' own prices per segment (the `tenant_prices` table)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from smsrelay.store.tables import tenant_prices


class TenantPriceRepository:
    """One tenant's overrides, keyed by (provider, country)."""

    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection

    async def all(self, tenant_id: str) -> list[RowMapping]:
        query = (
            select(tenant_prices)
            .where(tenant_prices.c.tenant_id == tenant_id)
            .order_by(tenant_prices.c.provider, tenant_prices.c.country)
        )
        return list((await self.connection.execute(query)).mappings().all())

    async def save(
        self, tenant_id: str, provider: str, country: str, values: Mapping[str, Any], now: datetime
    ) -> None:
        """Create or replace the tenant's price for `provider` to `country`."""
        changed = {**values, "updated_at": now}
        result = await self.connection.execute(
            update(tenant_prices).where(*_key(tenant_id, provider, country)).values(**changed)
        )
        if result.rowcount:
            return
        key = {"tenant_id": tenant_id, "provider": provider, "country": country}
        try:
            async with self.connection.begin_nested():
                await self.connection.execute(insert(tenant_prices).values(**key, **changed))
        except IntegrityError:  # a concurrent save created it first: ours replaces it
            await self.connection.execute(
                update(tenant_prices).where(*_key(tenant_id, provider, country)).values(**changed)
            )

    async def remove(self, tenant_id: str, provider: str, country: str) -> bool:
        result = await self.connection.execute(
            delete(tenant_prices).where(*_key(tenant_id, provider, country))
        )
        return bool(result.rowcount)


def _key(tenant_id: str, provider: str, country: str) -> tuple[Any, ...]:
    return (
        tenant_prices.c.tenant_id == tenant_id,
        tenant_prices.c.provider == provider,
        tenant_prices.c.country == country,
    )
