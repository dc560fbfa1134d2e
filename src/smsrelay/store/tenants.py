"""Tenant and API-key repository."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import insert, select
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from smsrelay.store.tables import api_keys, tenants


class TenantRepository:
    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection

    async def add_tenant(self, tenant_id: str, name: str, now: datetime) -> None:
        await self.connection.execute(
            insert(tenants).values(id=tenant_id, name=name, created_at=now)
        )

    async def add_key(
        self, key_id: str, tenant_id: str, prefix: str, key_hash: str, name: str, now: datetime
    ) -> None:
        await self.connection.execute(
            insert(api_keys).values(
                id=key_id,
                tenant_id=tenant_id,
                prefix=prefix,
                key_hash=key_hash,
                name=name,
                created_at=now,
            )
        )

    async def key_by_prefix(self, prefix: str) -> RowMapping | None:
        query = select(api_keys).where(api_keys.c.prefix == prefix)
        return (await self.connection.execute(query)).mappings().first()

    async def list_tenants(self) -> list[RowMapping]:
        query = select(tenants).order_by(tenants.c.created_at)
        return list((await self.connection.execute(query)).mappings().all())
