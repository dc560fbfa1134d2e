"""Tenant and API-key repository."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from smsrelay.store.tables import api_keys, tenants


@dataclass(frozen=True, slots=True)
class NewKey:
    """An API key row to insert: only the hash of the secret is ever stored."""

    key_id: str
    tenant_id: str
    prefix: str
    key_hash: str
    name: str
    scopes: str
    created_at: datetime
    expires_at: datetime | None = None


class TenantRepository:
    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection

    async def add_tenant(self, tenant_id: str, name: str, now: datetime) -> None:
        await self.connection.execute(
            insert(tenants).values(id=tenant_id, name=name, created_at=now)
        )

    async def tenant_exists(self, tenant_id: str) -> bool:
        query = select(tenants.c.id).where(tenants.c.id == tenant_id)
        return (await self.connection.execute(query)).first() is not None

    async def add_key(self, key: NewKey) -> None:
        await self.connection.execute(
            insert(api_keys).values(
                id=key.key_id,
                tenant_id=key.tenant_id,
                prefix=key.prefix,
                key_hash=key.key_hash,
                name=key.name,
                scopes=key.scopes,
                created_at=key.created_at,
                expires_at=key.expires_at,
            )
        )

    async def key_by_prefix(self, prefix: str) -> RowMapping | None:
        query = select(api_keys).where(api_keys.c.prefix == prefix)
        return (await self.connection.execute(query)).mappings().first()

    async def key_by_id(self, key_id: str, tenant_id: str | None = None) -> RowMapping | None:
        """One key; with `tenant_id`, only when it belongs to that tenant."""
        query = select(api_keys).where(api_keys.c.id == key_id)
        if tenant_id is not None:
            query = query.where(api_keys.c.tenant_id == tenant_id)
        return (await self.connection.execute(query)).mappings().first()

    async def keys_of_tenant(self, tenant_id: str) -> list[RowMapping]:
        query = (
            select(api_keys)
            .where(api_keys.c.tenant_id == tenant_id)
            .order_by(api_keys.c.created_at, api_keys.c.id)
        )
        return list((await self.connection.execute(query)).mappings().all())

    async def revoke_key(self, key_id: str, tenant_id: str | None, now: datetime) -> bool:
        """Mark an active key revoked; False when there is no such active key (for the tenant)."""
        query = update(api_keys).where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
        if tenant_id is not None:
            query = query.where(api_keys.c.tenant_id == tenant_id)
        result = await self.connection.execute(query.values(revoked_at=now))
        return bool(result.rowcount)

    async def touch_key(self, key_id: str, now: datetime) -> None:
        await self.connection.execute(
            update(api_keys).where(api_keys.c.id == key_id).values(last_used_at=now)
        )

    async def list_tenants(self) -> list[RowMapping]:
        query = select(tenants).order_by(tenants.c.created_at)
        return list((await self.connection.execute(query)).mappings().all())
