"""Engine creation for SQLite and PostgreSQL, transactions, and migrations at start-up."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from smsrelay.store.thread_writer import ThreadWriter

Result = TypeVar("Result")
Read = TypeVar("Read")
MIGRATIONS = Path(__file__).with_name("migrations")
_READ_ONLY = "smsrelay_read_only"


def async_url(url: str) -> str:
    """Map the URLs people write (`sqlite:///x.db`, `postgresql://…`) to async drivers."""
    parsed = make_url(url.replace("postgres://", "postgresql://", 1))
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    elif backend == "postgresql":
        parsed = parsed.set(drivername="postgresql+asyncpg")
    return parsed.render_as_string(hide_password=False)


def sqlite_path(url: str) -> Path | None:
    """The file behind a SQLite URL, or None for memory databases and other backends."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(str(parsed.database))


class Database:
    """Owns the engine; hands out transactions. One per process, built by bootstrap."""

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = url
        self.is_sqlite = make_url(async_url(url)).get_backend_name() == "sqlite"
        # SQLite has one writer: queue this process's writers here instead of in SQLite's
        # busy handler, which polls with sleeps of up to 100 ms.
        self._writer = asyncio.Lock() if self.is_sqlite else None
        path = sqlite_path(url)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        self.engine: AsyncEngine = self._create_engine(pool_size)
        self._path = path
        self._thread_writer: ThreadWriter | None = None

    def _create_engine(self, pool_size: int) -> AsyncEngine:
        if self.is_sqlite:
            engine = create_async_engine(
                async_url(self.url), connect_args={"timeout": 30}, pool_size=pool_size
            )
            _serialise_sqlite_writers(engine.sync_engine)
            return engine
        return create_async_engine(
            async_url(self.url), pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True
        )

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """One committed-or-rolled-back transaction that may write."""
        if self._writer is None:
            async with self.engine.begin() as connection:
                yield connection
            return
        async with self._writer, self.engine.begin() as connection:
            yield connection

    async def write(self, work: Callable[[AsyncConnection], Awaitable[Result]]) -> Result:
        """`work(connection)` in one write transaction, for a batch of many statements.

        On a SQLite file the whole transaction runs on a writer thread of its own, one hand-off
        in all (store/thread_writer.py): `work` may await nothing but the connection.
        """
        if self._writer is None or self._path is None:
            async with self.transaction() as connection:
                return await work(connection)
        async with self._writer:
            return await self._threaded().run(work)

    async def write_then_read(
        self,
        work: Callable[[AsyncConnection], Awaitable[Result]],
        read: Callable[[AsyncConnection, Result], Awaitable[Read]],
    ) -> tuple[Result, Read]:
        """`write(work)`, then `read(connection, its result)` in a read-only transaction that
        begins after the write committed (it sees the write and every commit before it).

        The read goes where the write went: on a SQLite file the same writer thread, one
        hand-off for both; on PostgreSQL the same connection, one checkout for both. `read`,
        like `work`, may await nothing but the connection.
        """
        if self._writer is None:
            async with self.engine.connect() as connection:
                async with connection.begin():
                    done = await work(connection)
                async with connection.begin():
                    return done, await read(connection, done)
        if self._path is None:
            done = await self.write(work)
            async with self.reading() as connection:
                return done, await read(connection, done)
        async with self._writer:
            return await self._threaded().run_then_read(work, read)

    def _threaded(self) -> ThreadWriter:
        if self._thread_writer is None:
            self._thread_writer = ThreadWriter(
                f"sqlite:///{self._path}", _serialise_sqlite_writers, {_READ_ONLY: True}
            )
        return self._thread_writer

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[AsyncConnection]:
        """A read-only transaction: on SQLite it takes no write lock and waits for no writer."""
        async with self.engine.connect() as connection:
            reader = await connection.execution_options(**{_READ_ONLY: True})
            async with reader.begin():
                yield reader

    async def migrate(self) -> None:
        """Bring the schema to the newest migration."""
        async with self.engine.begin() as connection:
            await connection.run_sync(_upgrade_to_head)

    async def dispose(self) -> None:
        if self._thread_writer is not None:
            await asyncio.to_thread(self._thread_writer.dispose)
            self._thread_writer = None
        await self.engine.dispose()


def _upgrade_to_head(connection: Connection) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


def _serialise_sqlite_writers(engine: Engine) -> None:
    """WAL, a busy timeout and BEGIN IMMEDIATE: writers queue instead of failing with BUSY."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        read_only = connection.get_execution_options().get(_READ_ONLY, False)
        connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")
