"""Recipient list repository: lists, and their members merged by phone number."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from smsrelay.store.tables import list_members, recipient_lists


class ListRepository:
    """Reads and writes recipient lists inside the caller's transaction."""

    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection

    async def add(self, row: Mapping[str, Any]) -> None:
        await self.connection.execute(recipient_lists.insert().values(**row))

    async def get(self, list_id: str, tenant_id: str) -> RowMapping | None:
        query = select(recipient_lists).where(
            recipient_lists.c.id == list_id, recipient_lists.c.tenant_id == tenant_id
        )
        return (await self.connection.execute(query)).mappings().first()

    async def page(
        self, tenant_id: str, before: tuple[datetime, str] | None, limit: int
    ) -> list[RowMapping]:
        table = recipient_lists
        query = select(table).where(table.c.tenant_id == tenant_id)
        if before is not None:
            at, key = before
            query = query.where(
                or_(table.c.created_at < at, and_(table.c.created_at == at, table.c.id < key))
            )
        query = query.order_by(table.c.created_at.desc(), table.c.id.desc()).limit(limit)
        return list((await self.connection.execute(query)).mappings().all())

    async def counts(self, list_ids: Sequence[str]) -> dict[str, int]:
        query = (
            select(list_members.c.list_id, func.count())
            .where(list_members.c.list_id.in_(list_ids))
            .group_by(list_members.c.list_id)
        )
        return {row[0]: row[1] for row in await self.connection.execute(query)}

    async def lock(self, list_id: str, tenant_id: str) -> bool:
        """Hold the tenant's list row until the transaction ends; False when there is none.

        Deletes and imports both take this lock first, so an import's batch either lands
        before a delete (which then removes it) or finds the list gone.
        """
        query = (
            select(recipient_lists.c.id)
            .where(recipient_lists.c.id == list_id, recipient_lists.c.tenant_id == tenant_id)
            .with_for_update()
        )
        return (await self.connection.execute(query)).first() is not None

    async def remove(self, list_id: str, tenant_id: str) -> bool:
        if not await self.lock(list_id, tenant_id):
            return False
        await self.connection.execute(delete(list_members).where(list_members.c.list_id == list_id))
        result = await self.connection.execute(
            delete(recipient_lists).where(
                recipient_lists.c.id == list_id, recipient_lists.c.tenant_id == tenant_id
            )
        )
        return bool(result.rowcount)

    async def touch(self, list_id: str, now: datetime) -> None:
        await self.connection.execute(
            update(recipient_lists).where(recipient_lists.c.id == list_id).values(updated_at=now)
        )

    async def members(self, list_id: str, after: str | None, limit: int) -> list[RowMapping]:
        query = select(list_members).where(list_members.c.list_id == list_id)
        if after is not None:
            query = query.where(list_members.c.phone > after)
        query = query.order_by(list_members.c.phone).limit(limit)
        return list((await self.connection.execute(query)).mappings().all())

    async def merge_members(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Insert members; a number already on the list gets the new variables."""
        if not rows:
            return
        dialect = postgresql if self.connection.dialect.name == "postgresql" else sqlite
        statement = dialect.insert(list_members)
        statement = statement.on_conflict_do_update(
            index_elements=[list_members.c.list_id, list_members.c.phone],
            set_={
                "variables": statement.excluded.variables,
                "region": statement.excluded.region,
                "updated_at": statement.excluded.updated_at,
            },
        )
        await self.connection.execute(statement, list(rows))
