"""Bulk repository: broadcasts, their compact recipients, the expander's lease and progress."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, insert, or_, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from smsrelay.domain.status import Status
from smsrelay.store.outbox import WRITE_BATCH, OutboxRepository
from smsrelay.store.tables import bulk_recipients, bulks, messages

OPEN = ("accepting", "expanding")  # bulks whose recipients are not all outbox rows yet
# One accepted recipient: seq, phone (E.164), region, the template's variables as JSON.
Recipient = tuple[int, str, str | None, str | None]
RECIPIENT_COLUMNS = ("bulk_id", "seq", "phone", "region", "variables")


class BulkRepository:
    """Reads and writes bulks inside the caller's transaction."""

    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection

    async def add(self, row: Mapping[str, Any], recipients: Sequence[Recipient]) -> None:
        """The bulk and its recipients (seq, phone, region, variables JSON).

        The recipients go through the driver's own `executemany`: a third of the time
        SQLAlchemy's per-row parameter processing takes for 100,000 rows.
        """
        await self.connection.execute(insert(bulks).values(**row))
        if self.connection.dialect.name == "postgresql":
            await self._copy(row["id"], recipients)
            return
        marks = ", ".join(_placeholders(self.connection.dialect.paramstyle, 5))
        columns = ", ".join(RECIPIENT_COLUMNS)
        # Constant names and the driver's markers only; every value is bound.
        statement = f"INSERT INTO {bulk_recipients.name} ({columns}) VALUES ({marks})"  # noqa: S608
        bulk_id = row["id"]
        for start in range(0, len(recipients), WRITE_BATCH * 4):
            batch = [(bulk_id, *r) for r in recipients[start : start + WRITE_BATCH * 4]]
            await self.connection.exec_driver_sql(statement, batch)

    async def _copy(self, bulk_id: str, recipients: Sequence[Recipient]) -> None:
        """PostgreSQL's COPY on the transaction's own connection: 100,000 rows in one stream."""
        raw = await self.connection.get_raw_connection()
        driver: Any = raw.driver_connection  # asyncpg's connection
        records = [(bulk_id, *recipient) for recipient in recipients]
        await driver.copy_records_to_table(
            bulk_recipients.name, records=records, columns=list(RECIPIENT_COLUMNS)
        )

    async def get(self, bulk_id: str, tenant_id: str) -> RowMapping | None:
        query = select(bulks).where(bulks.c.id == bulk_id, bulks.c.tenant_id == tenant_id)
        return (await self.connection.execute(query)).mappings().first()

    async def claim(
        self, worker: str, now: datetime, lease: timedelta, skip: Sequence[str] = ()
    ) -> RowMapping | None:
        """Lease one open bulk nobody holds (or whose holder's lease ran out) to `worker`."""
        free = or_(bulks.c.lease_expires_at.is_(None), bulks.c.lease_expires_at <= now)
        candidates = select(bulks.c.id).where(bulks.c.status.in_(OPEN), free)
        if skip:
            candidates = candidates.where(bulks.c.id.not_in(skip))
        query = candidates.order_by(bulks.c.created_at).limit(1).with_for_update(skip_locked=True)
        bulk_id = (await self.connection.execute(query)).scalar()
        if bulk_id is None:
            return None
        taken = (
            update(bulks)
            .where(bulks.c.id == bulk_id, bulks.c.status.in_(OPEN), free)
            .values(lease_owner=worker, lease_expires_at=now + lease, updated_at=now)
            .returning(*bulks.c)
        )
        return (await self.connection.execute(taken)).mappings().first()

    async def hold(
        self, bulk_id: str, worker: str, cursor: int, now: datetime, lease: timedelta
    ) -> bool:
        """Renew `worker`'s lease if it still holds the bulk at `cursor` (the chunk's fence)."""
        result = await self.connection.execute(
            update(bulks)
            .where(
                bulks.c.id == bulk_id,
                bulks.c.lease_owner == worker,
                bulks.c.expanded_count == cursor,
                bulks.c.status.in_(OPEN),
            )
            .values(lease_expires_at=now + lease, updated_at=now)
        )
        return bool(result.rowcount)

    async def recipients(self, bulk_id: str, cursor: int, limit: int) -> list[RowMapping]:
        query = (
            select(bulk_recipients)
            .where(bulk_recipients.c.bulk_id == bulk_id, bulk_recipients.c.seq >= cursor)
            .order_by(bulk_recipients.c.seq)
            .limit(limit)
        )
        return list((await self.connection.execute(query)).mappings().all())

    async def advance(self, bulk_id: str, cursor: int, done: bool, now: datetime) -> None:
        values: dict[str, Any] = {"expanded_count": cursor, "updated_at": now}
        values["status"] = "ready" if done else "expanding"
        if done:
            values.update(lease_owner=None, lease_expires_at=None)
        await self.connection.execute(update(bulks).where(bulks.c.id == bulk_id).values(**values))

    async def release(self, bulk_id: str, worker: str) -> None:
        await self.connection.execute(
            update(bulks)
            .where(bulks.c.id == bulk_id, bulks.c.lease_owner == worker)
            .values(lease_owner=None, lease_expires_at=None)
        )

    async def add_events(self, events: Sequence[Mapping[str, Any]]) -> None:
        await OutboxRepository(self.connection).add_many((), events)

    async def mark_canceled(self, bulk_id: str, now: datetime) -> bool:
        result = await self.connection.execute(
            update(bulks)
            .where(bulks.c.id == bulk_id, bulks.c.status != "canceled")
            .values(
                status="canceled",
                canceled_at=now,
                updated_at=now,
                lease_owner=None,
                lease_expires_at=None,
            )
        )
        return bool(result.rowcount)

    async def cancel_pending(self, bulk_id: str, now: datetime) -> list[str]:
        """Move the bulk's `pending` messages to `canceled`; their ids."""
        pending = and_(messages.c.bulk_id == bulk_id, messages.c.status == Status.PENDING.value)
        result = await self.connection.execute(
            update(messages)
            .where(pending)
            .values(status=Status.CANCELED.value, updated_at=now)
            .returning(messages.c.id)
        )
        return list(result.scalars())

    async def progress(self, bulk_id: str) -> list[RowMapping]:
        """(status, total_cost, currency, count) of the bulk's messages."""
        query = (
            select(
                messages.c.status,
                messages.c.total_cost,
                messages.c.currency,
                func.count().label("count"),
            )
            .where(messages.c.bulk_id == bulk_id)
            .group_by(messages.c.status, messages.c.total_cost, messages.c.currency)
        )
        return list((await self.connection.execute(query)).mappings().all())

    async def page(
        self, tenant_id: str, before: tuple[datetime, str] | None, limit: int
    ) -> list[RowMapping]:
        query = select(bulks).where(bulks.c.tenant_id == tenant_id)
        if before is not None:
            at, key = before
            query = query.where(
                or_(bulks.c.created_at < at, and_(bulks.c.created_at == at, bulks.c.id < key))
            )
        query = query.order_by(bulks.c.created_at.desc(), bulks.c.id.desc()).limit(limit)
        return list((await self.connection.execute(query)).mappings().all())


def _placeholders(paramstyle: str, count: int) -> list[str]:
    """Bound-parameter markers in the driver's style (SQLite `?`, asyncpg `$1`)."""
    if paramstyle == "qmark":
        return ["?"] * count
    return [f"${n}" for n in range(1, count + 1)]
