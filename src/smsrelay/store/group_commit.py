"""Group commit: many callers' writes share one transaction, and each caller awaits its own answer.

A request that must be durable before it is answered (a send's 202, a status callback's 200)
pays a whole transaction for a few rows. `GroupCommit` queues such writes: while one batch
commits, later callers queue behind it, and the next batch takes them all in one transaction.
There is no timer: a lone caller commits at once, and under load the batch grows by itself.

A batch whose transaction fails wrote nothing. It is then written again in halves, and each
half that fails in halves again, in order: one caller's error (a 402, a constraint) reaches
that caller alone, nobody else's write is lost, and a caller who fails in every batch (a
tenant at its hard stop) costs the others about 2·log2(batch) transactions, not one each.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection

from smsrelay.store.database import Database

Item = TypeVar("Item")
Result = TypeVar("Result")

# Writes a batch in the caller's transaction; one result per item, in order.
WriteMany = Callable[[AsyncConnection, Sequence[Item]], Awaitable[Sequence[Result]]]


class GroupCommit(Generic[Item, Result]):
    """Queues items and writes them in batches of up to `max_batch` with `write_many`."""

    def __init__(
        self, db: Database, write_many: WriteMany[Item, Result], *, max_batch: int = 256
    ) -> None:
        self.db = db
        self.write_many = write_many
        self.max_batch = max_batch
        self._queue: list[tuple[Item, asyncio.Future[Result]]] = []
        self._drainer: asyncio.Task[None] | None = None
        self.batches = 0  # transactions committed, for tests and benchmarks

    async def submit(self, item: Item) -> Result:
        """Write `item` in the next batch and return its result once that batch has committed.

        A caller that gives up (its request is canceled) does not take the write back: the
        item is written with its batch, as a write that committed just before would be.
        """
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._queue.append((item, future))
        if self._drainer is None or self._drainer.done():
            self._drainer = asyncio.create_task(self._drain())
        return await future

    async def close(self) -> None:
        """Wait for what is queued to be written."""
        if self._drainer is not None:
            await asyncio.shield(self._drainer)

    async def _drain(self) -> None:
        while self._queue:
            batch = self._queue[: self.max_batch]
            del self._queue[: len(batch)]
            try:
                await self._write(batch)
            except BaseException as exc:  # canceled at shutdown: nobody waits in vain
                for _, future in batch + self._queue:
                    _settle(future, exc=exc)
                self._queue.clear()
                raise

    async def _write(self, batch: list[tuple[Item, asyncio.Future[Result]]]) -> None:
        items = [item for item, _ in batch]
        try:
            results = await self.db.write(partial(self._write_items, items))
        except Exception as exc:
            if len(batch) == 1:
                _settle(batch[0][1], exc=exc)
                return
            middle = len(batch) // 2
            await self._write(batch[:middle])
            await self._write(batch[middle:])
            return
        self.batches += 1
        for (_, future), result in zip(batch, results, strict=True):
            _settle(future, result)

    async def _write_items(
        self, items: Sequence[Item], connection: AsyncConnection
    ) -> Sequence[Result]:
        return await self.write_many(connection, items)


def _settle(
    future: asyncio.Future[Result],
    result: Result | None = None,
    *,
    exc: BaseException | None = None,
) -> None:
    if future.done():  # its caller was canceled
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(result)  # type: ignore[arg-type]
