"""Repository of tenants' own provider configs (the `tenant_provider_configs` table)."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from smsrelay.domain.ids import new_id
from smsrelay.store.tables import tenant_provider_configs as configs


class ProviderConfigRepository:
    """Configs keyed by (tenant, provider); secrets arrive here already encrypted."""

    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection

    async def get(self, tenant_id: str, provider: str) -> RowMapping | None:
        query = select(configs).where(*_key(tenant_id, provider))
        return (await self.connection.execute(query)).mappings().first()

    async def get_by_id(self, config_id: str) -> RowMapping | None:
        query = select(configs).where(configs.c.id == config_id)
        return (await self.connection.execute(query)).mappings().first()

    async def all(self, tenant_id: str, *, verified_only: bool = False) -> list[RowMapping]:
        query = select(configs).where(configs.c.tenant_id == tenant_id).order_by(configs.c.provider)
        if verified_only:
            query = query.where(configs.c.verified_at.is_not(None))
        return list((await self.connection.execute(query)).mappings().all())

    async def verified_of(self, tenant_ids: Collection[str]) -> list[RowMapping]:
        """The verified configs of several tenants at once."""
        query = select(configs).where(
            configs.c.tenant_id.in_(tenant_ids), configs.c.verified_at.is_not(None)
        )
        return list((await self.connection.execute(query)).mappings().all())

    async def by_account(self, provider: str, account_id: str) -> list[RowMapping]:
        query = select(configs).where(
            configs.c.provider == provider, configs.c.account_id == account_id
        )
        return list((await self.connection.execute(query)).mappings().all())

    async def by_webhook_token_hash(self, provider: str, token_hash: str) -> RowMapping | None:
        query = select(configs).where(
            configs.c.provider == provider, configs.c.webhook_token_hash == token_hash
        )
        return (await self.connection.execute(query)).mappings().first()

    async def save(
        self, tenant_id: str, provider: str, values: Mapping[str, Any], now: datetime
    ) -> tuple[RowMapping, bool]:
        """Create or replace the tenant's config (unverified, next version); True if created."""
        changed = {**values, "updated_at": now, "verified_at": None}
        if await self._replace(tenant_id, provider, changed):
            return await self._must_get(tenant_id, provider), False
        row = {"id": new_id("pcf"), "tenant_id": tenant_id, "provider": provider}
        try:
            async with self.connection.begin_nested():
                await self.connection.execute(
                    insert(configs).values(**row, **changed, version=1, created_at=now)
                )
        except IntegrityError:  # a concurrent save created it first: ours replaces it
            await self._replace(tenant_id, provider, changed)
            return await self._must_get(tenant_id, provider), False
        return await self._must_get(tenant_id, provider), True

    async def _replace(self, tenant_id: str, provider: str, values: Mapping[str, Any]) -> bool:
        statement = (
            update(configs)
            .where(*_key(tenant_id, provider))
            .values(**values, version=configs.c.version + 1)
        )
        return bool((await self.connection.execute(statement)).rowcount)

    async def _must_get(self, tenant_id: str, provider: str) -> RowMapping:
        row = await self.get(tenant_id, provider)
        assert row is not None
        return row

    async def mark_verified(self, config_id: str, version: int, now: datetime) -> bool:
        """Verified, unless the config was saved again meanwhile (another version)."""
        statement = (
            update(configs)
            .where(configs.c.id == config_id, configs.c.version == version)
            .values(verified_at=now, updated_at=now)
        )
        return bool((await self.connection.execute(statement)).rowcount)

    async def remove(self, tenant_id: str, provider: str) -> bool:
        result = await self.connection.execute(delete(configs).where(*_key(tenant_id, provider)))
        return bool(result.rowcount)

    async def sealed_secrets(self) -> list[tuple[str, str]]:
        """(config id, encrypted secrets) of every config, for key rotation."""
        query = select(configs.c.id, configs.c.secrets).order_by(configs.c.id)
        return [(row.id, row.secrets) for row in await self.connection.execute(query)]

    async def reseal(self, config_id: str, sealed: str) -> None:
        """Store re-encrypted secrets: same plaintext, so the version does not change."""
        await self.connection.execute(
            update(configs).where(configs.c.id == config_id).values(secrets=sealed)
        )


def _key(tenant_id: str, provider: str) -> tuple[Any, ...]:
    return (configs.c.tenant_id == tenant_id, configs.c.provider == provider)
