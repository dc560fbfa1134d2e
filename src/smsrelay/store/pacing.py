"""Pacing in the database: senders' shared reservation state, and tenants' throughput overrides."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from smsrelay.domain.reservations import Booking, Bucket, Terms, Written, book
from smsrelay.store.database import Database
from smsrelay.store.tables import sender_pacing, sender_throughput

# Compare-and-set attempts before a round gives the sender up (only PostgreSQL ever conflicts:
# SQLite's writers already queue one at a time).
MAX_CONFLICTS = 100


class DatabaseBuckets:
    """Buckets shared through one `sender_pacing` row per sender.

    Each booking reads the row, computes, and writes it back only if its `version` is still the
    one read (a conditional UPDATE); a concurrent booking makes it read and compute again. So two
    workers never hold the same slot, and a worker that dies after booking wastes its slots
    without ever giving them to anyone else. On PostgreSQL the read also locks the row
    (`FOR UPDATE`), so concurrent bookings of one sender queue for it instead of each reading,
    losing the race and trying again (at 100 bookings a second between two workers, retries
    came a hundred in a row); SQLite's writers already queue.
    """

    def __init__(self, db: Database, clock: Callable[[], datetime] | None = None) -> None:
        self.db = db
        self.clock = clock or (lambda: datetime.now(UTC))

    async def book(
        self,
        key: str,
        now: float,
        costs: list[int],
        terms: Terms,
        written: Written = (),
    ) -> list[Booking]:
        for _ in range(MAX_CONFLICTS):
            async with self.db.transaction() as connection:
                bookings = await self._try_book(connection, key, now, costs, terms, written)
            if bookings is not None:
                return bookings
        raise RuntimeError(f"pacing state of one sender changed {MAX_CONFLICTS} times in a row")

    async def _try_book(
        self,
        connection: AsyncConnection,
        key: str,
        now: float,
        costs: list[int],
        terms: Terms,
        written: Written,
    ) -> list[Booking] | None:
        row = await _read_or_create(connection, key, self.clock())
        bucket = Bucket.from_json(row["state"])
        bookings = book(bucket, now, costs, terms, written)
        saved = await connection.execute(
            update(sender_pacing)
            .where(sender_pacing.c.bucket_key == key, sender_pacing.c.version == row["version"])
            .values(state=bucket.to_json(), version=row["version"] + 1, updated_at=self.clock())
        )
        return bookings if saved.rowcount == 1 else None

    async def close(self) -> None:
        return None


async def _read_or_create(connection: AsyncConnection, key: str, now: datetime) -> RowMapping:
    query = select(sender_pacing).where(sender_pacing.c.bucket_key == key).with_for_update()
    row = (await connection.execute(query)).mappings().first()
    if row is not None:
        return row
    try:
        async with connection.begin_nested():
            values = {"bucket_key": key, "state": {}, "version": 0, "updated_at": now}
            await connection.execute(insert(sender_pacing).values(**values))
    except IntegrityError:  # another worker created it first
        pass
    return (await connection.execute(query)).mappings().one()


class SenderThroughputRepository:
    """Tenants' own rates per sender (the `sender_throughput` table)."""

    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection

    async def all(self) -> list[RowMapping]:
        return list((await self.connection.execute(select(sender_throughput))).mappings().all())

    async def for_tenant(self, tenant_id: str) -> list[RowMapping]:
        query = (
            select(sender_throughput)
            .where(sender_throughput.c.tenant_id == tenant_id)
            .order_by(sender_throughput.c.sender)
        )
        return list((await self.connection.execute(query)).mappings().all())

    async def get(self, tenant_id: str, sender: str) -> RowMapping | None:
        query = select(sender_throughput).where(*_key(tenant_id, sender))
        return (await self.connection.execute(query)).mappings().first()

    async def save(
        self, tenant_id: str, sender: str, rate: int, source: str, now: datetime
    ) -> None:
        """Create or replace the tenant's rate for `sender`."""
        values = {"segments_per_second": rate, "source": source, "updated_at": now}
        changed = update(sender_throughput).where(*_key(tenant_id, sender)).values(**values)
        if (await self.connection.execute(changed)).rowcount:
            return
        try:
            async with self.connection.begin_nested():
                await self.connection.execute(
                    insert(sender_throughput).values(tenant_id=tenant_id, sender=sender, **values)
                )
        except IntegrityError:  # a concurrent save created it first: ours replaces it
            await self.connection.execute(changed)

    async def remove(self, tenant_id: str, sender: str) -> bool:
        result = await self.connection.execute(
            delete(sender_throughput).where(*_key(tenant_id, sender))
        )
        return bool(result.rowcount)


def _key(tenant_id: str, sender: str) -> tuple[ColumnElement[bool], ...]:
    return (sender_throughput.c.tenant_id == tenant_id, sender_throughput.c.sender == sender)
