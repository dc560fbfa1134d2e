"""A whole SQLite write transaction in one thread hand-off.

aiosqlite runs each statement on its own thread and hands every step (cursor, execute, fetch,
close) back to the event loop: a dozen-statement batch is some fifty hand-offs, and each waits
for the interpreter lock while the loop is busy serving requests. Under load a batch of 30 sends
took 50 ms that way. `ThreadWriter` instead runs the transaction's code, unchanged, on one
dedicated thread with a plain `sqlite3` connection: the repositories' `await connection.execute`
completes at once there, so the whole batch is one hand-off.

Only for code that awaits nothing but the connection (repositories, `balances`, `consent`):
awaiting anything else there is a programming error and is refused.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType
from typing import Any, TypeVar, cast

from sqlalchemy import create_engine
from sqlalchemy.engine import Connection, Engine, NestedTransaction
from sqlalchemy.ext.asyncio import AsyncConnection

Result = TypeVar("Result")
Read = TypeVar("Read")
Work = Callable[[AsyncConnection], Awaitable[Result]]
ReadAfter = Callable[[AsyncConnection, Result], Awaitable[Read]]


class ThreadWriter:
    """Runs write transactions on one thread of its own, against `url` (a SQLite file)."""

    def __init__(
        self, url: str, configure: Callable[[Engine], None], read_only: Mapping[str, Any]
    ) -> None:
        # One thread, so the connection is only ever used where it was made.
        self._engine = create_engine(
            url, connect_args={"timeout": 30, "check_same_thread": False}, pool_size=1
        )
        configure(self._engine)
        self._read_only = dict(read_only)  # the execution options of a read-only transaction
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="smsrelay-sqlite")

    async def run(self, work: Work[Result]) -> Result:
        """`work(connection)` in one committed-or-rolled-back transaction on the writer thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread, self._transaction, work)

    async def run_then_read(
        self, work: Work[Result], read: ReadAfter[Result, Read]
    ) -> tuple[Result, Read]:
        """`run(work)`, then `read(connection, its result)` in a read-only transaction begun
        after the commit, on the same thread: one hand-off for both."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread, self._transactions, work, read)

    def _transaction(self, work: Work[Result], **options: Any) -> Result:
        with self._engine.connect() as plain:
            connection = plain.execution_options(**options) if options else plain
            with connection.begin():
                bridge = cast(AsyncConnection, _Bridge(connection))
                return _complete(cast(Coroutine[Any, Any, Result], work(bridge)))

    def _transactions(
        self, work: Work[Result], read: ReadAfter[Result, Read]
    ) -> tuple[Result, Read]:
        done = self._transaction(work)
        return done, self._transaction(lambda bridge: read(bridge, done), **self._read_only)

    def dispose(self) -> None:
        self._thread.submit(self._engine.dispose).result()
        self._thread.shutdown(wait=True)


def _complete(coroutine: Coroutine[Any, Any, Result]) -> Result:
    """Run a coroutine that never suspends to its end, here and now."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        return cast(Result, done.value)
    coroutine.close()
    raise RuntimeError("a transaction on the SQLite writer thread awaited more than the database")


class _Bridge:
    """The part of `AsyncConnection` the repositories use, over a synchronous connection."""

    def __init__(self, connection: Connection) -> None:
        self.sync_connection = connection
        self.dialect = connection.dialect

    async def execute(self, *args: Any, **kwargs: Any) -> Any:
        return self.sync_connection.execute(*args, **kwargs)

    async def exec_driver_sql(self, *args: Any, **kwargs: Any) -> Any:
        return self.sync_connection.exec_driver_sql(*args, **kwargs)

    async def scalar(self, *args: Any, **kwargs: Any) -> Any:
        return self.sync_connection.scalar(*args, **kwargs)

    async def scalars(self, *args: Any, **kwargs: Any) -> Any:
        return self.sync_connection.scalars(*args, **kwargs)

    async def run_sync(self, fn: Callable[..., Result], *args: Any, **kwargs: Any) -> Result:
        return fn(self.sync_connection, *args, **kwargs)

    def begin_nested(self) -> _Savepoint:
        return _Savepoint(self.sync_connection.begin_nested())


class _Savepoint:
    """`async with connection.begin_nested():` over a synchronous savepoint."""

    def __init__(self, transaction: NestedTransaction) -> None:
        self.transaction = transaction

    async def __aenter__(self) -> _Savepoint:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.transaction.__exit__(kind, error, traceback)
