"""`Database.write`: one write transaction for a batch (on SQLite, on the writer thread)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Generator
from datetime import UTC, datetime

import pytest
from sqlalchemy import insert, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from smsrelay.store.database import Database
from smsrelay.store.tables import unmatched_callbacks as shelf

AT = datetime(2026, 11, 29, 12, tzinfo=UTC)


def _row(key: str) -> dict[str, object]:
    return {"provider_message_id": "SM1", "dedupe_key": key, "received_at": AT, "payload": {}}


async def _keys(db: Database) -> list[str]:
    async with db.reading() as connection:
        return list(await connection.scalars(select(shelf.c.dedupe_key).order_by(shelf.c.id)))


async def test_a_write_commits_and_readers_see_it(db: Database) -> None:
    async def work(connection: AsyncConnection) -> str:
        await connection.execute(insert(shelf), [_row("a"), _row("b")])
        return "written"

    assert await db.write(work) == "written"
    assert await _keys(db) == ["a", "b"]


async def test_a_failed_savepoint_is_rolled_back_alone(db: Database) -> None:
    async def work(connection: AsyncConnection) -> str:
        await connection.execute(insert(shelf).values(**_row("kept")))
        try:
            async with connection.begin_nested():
                await connection.execute(insert(shelf).values(**_row("kept")))  # unique: fails
        except IntegrityError:
            return "duplicate refused"
        return "no error"

    assert await db.write(work) == "duplicate refused"
    assert await _keys(db) == ["kept"]


async def test_an_error_rolls_the_whole_write_back(db: Database) -> None:
    async def work(connection: AsyncConnection) -> None:
        await connection.execute(insert(shelf).values(**_row("gone")))
        raise ValueError("refused by the rules")

    with pytest.raises(ValueError, match="refused by the rules"):
        await db.write(work)
    assert await _keys(db) == []


async def test_writes_from_many_tasks_all_land(db: Database) -> None:
    async def one(key: str) -> None:
        async def work(connection: AsyncConnection) -> None:
            await connection.execute(insert(shelf).values(**_row(key)))

        await db.write(work)

    await asyncio.gather(*(one(f"k{i:02d}") for i in range(30)))
    assert sorted(await _keys(db)) == [f"k{i:02d}" for i in range(30)]


class _Suspend:
    """An awaitable that gives the event loop a turn, as awaiting a lock or a sleep would."""

    def __await__(self) -> Generator[None, None, None]:
        yield


async def test_on_sqlite_awaiting_more_than_the_database_is_refused_and_writes_nothing(
    db: Database,
) -> None:
    async def work(connection: AsyncConnection) -> str:
        await connection.execute(insert(shelf).values(**_row("half")))
        await _Suspend()
        return "written"

    if not db.is_sqlite:  # PostgreSQL's transaction runs on the event loop: anything goes
        assert await db.write(work) == "written"
        return
    with pytest.raises(RuntimeError, match="awaited more than the database"):
        await db.write(work)
    assert await _keys(db) == []


async def test_a_read_after_a_write_sees_it_where_the_write_ran(db: Database) -> None:
    async def work(connection: AsyncConnection) -> str:
        await connection.execute(insert(shelf).values(**_row("claimed")))
        return await _where(connection)

    async def read(connection: AsyncConnection, wrote_at: str) -> tuple[str, list[str]]:
        keys = await connection.scalars(select(shelf.c.dedupe_key))
        return await _where(connection), [wrote_at, *keys]

    wrote_at, (read_at, seen) = await db.write_then_read(work, read)

    assert read_at == wrote_at  # one hand-off to the writer thread, or one connection
    assert wrote_at.startswith("smsrelay-sqlite" if db.is_sqlite else "pid ")
    assert seen == [wrote_at, "claimed"]


async def test_a_failed_write_is_not_followed_by_its_read(db: Database) -> None:
    reads: list[str] = []

    async def work(connection: AsyncConnection) -> None:
        await connection.execute(insert(shelf).values(**_row("gone")))
        raise ValueError("refused by the rules")

    async def read(connection: AsyncConnection, _: None) -> None:
        reads.append("read")

    with pytest.raises(ValueError, match="refused by the rules"):
        await db.write_then_read(work, read)
    assert reads == [] and await _keys(db) == []


async def _where(connection: AsyncConnection) -> str:
    """The thread and connection a statement runs on (the server's pid on PostgreSQL)."""
    if connection.dialect.name == "postgresql":
        return f"pid {await connection.scalar(text('SELECT pg_backend_pid()'))}"
    return threading.current_thread().name
