"""Accepted sends recorded in batches: one transaction for all that arrive while one is written.

Each acceptance is still a compare-and-set on the worker's own lease (`status = sending AND
lease_owner = worker`), written with its `provider_accepted` event in the same transaction; an
acceptance whose lease was lost goes through the dispatcher's late-acceptance rule inside that
transaction too. Only the number of transactions changes: under load one per batch instead of
one per message, which is most of a dispatcher's database time.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from smsrelay.domain.status import Status
from smsrelay.store.acceptances import mark_sent, parked_among
from smsrelay.store.database import Database
from smsrelay.store.outbox import OutboxRepository, event_row
from smsrelay.store.tables import message_events

# What to do with an acceptance whose lease this worker no longer holds (see the dispatcher).
LateAcceptance = Callable[[OutboxRepository, str, str | None, datetime], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Acceptance:
    message_id: str
    provider_message_id: str | None
    event_data: dict[str, Any]


@dataclass
class AcceptanceWriter:
    """Writes acceptances for one worker; `record` returns once its batch is committed."""

    db: Database
    worker: str
    clock: Callable[[], datetime]
    on_late: LateAcceptance
    max_batch: int = 200
    # A batch is written once `fill` acceptances wait, or its first has waited `linger_seconds`.
    fill: int = 1
    linger_seconds: float = 0.0
    # A deque: the writer thread takes from it (popleft is atomic) while the loop appends.
    _waiting: deque[tuple[Acceptance, asyncio.Future[bool]]] = field(default_factory=deque)
    _writing: asyncio.Task[None] | None = None
    _filled: asyncio.Future[None] | None = None

    async def record(self, acceptance: Acceptance) -> bool:
        """Store one acceptance; True when a callback for its id arrived first (parked)."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiting.append((acceptance, future))
        if self._writing is None or self._writing.done():
            self._writing = asyncio.create_task(self._write_all())
        elif len(self._waiting) >= self.fill:
            _settle(self._filled)
        return await future

    async def _write_all(self) -> None:
        while self._waiting:
            await self._gather()
            batch: list[tuple[Acceptance, asyncio.Future[bool]]] = []
            try:
                # One transaction, on SQLite one hand-off to the writer thread (Database.write).
                parked = await self.db.write(partial(self._write, taken=batch))
            except Exception as exc:  # every sender in the batch sees its write fail
                for _, future in batch or self._take_batch([]):
                    if not future.done():
                        future.set_exception(exc)
                continue
            for item, future in batch:
                if not future.done():
                    future.set_result(item.provider_message_id in parked)

    async def _gather(self) -> None:
        """Wait, at most `linger_seconds`, until `fill` acceptances wait.

        Each transaction costs about a millisecond of CPU however few rows it writes (the
        hand-off, BEGIN, four statements, COMMIT), while the slots these sends held are free
        already: a batch that waits a few milliseconds for company costs nothing but the
        time until `sent` is recorded.
        """
        if len(self._waiting) >= self.fill or self.linger_seconds <= 0:
            return
        loop = asyncio.get_running_loop()
        self._filled = loop.create_future()
        timer = loop.call_later(self.linger_seconds, _settle, self._filled)
        try:
            await self._filled
        finally:
            timer.cancel()
            self._filled = None

    def _take_batch(
        self, into: list[tuple[Acceptance, asyncio.Future[bool]]]
    ) -> list[tuple[Acceptance, asyncio.Future[bool]]]:
        while self._waiting and len(into) < self.max_batch:
            into.append(self._waiting.popleft())
        return into

    async def _write(
        self, connection: AsyncConnection, taken: list[tuple[Acceptance, asyncio.Future[bool]]]
    ) -> set[str | None]:
        """Write the batch, taken once the transaction is open: what arrived while it waited
        for the database joins it. May await nothing but `connection` (see Database.write)."""
        batch = [item for item, _ in self._take_batch(taken)]
        if not batch:
            return set()
        now = self.clock()
        await connection.execute(insert(message_events), [_event(a, now) for a in batch])
        sent = [(a.message_id, a.provider_message_id) for a in batch]
        moved = await mark_sent(connection, self.worker, sent, now)
        outbox = OutboxRepository(connection)
        for item in batch:
            if item.message_id not in moved:
                await self.on_late(outbox, item.message_id, item.provider_message_id, now)
        return await parked_among(connection, [a.provider_message_id for a in batch])


def _settle(future: asyncio.Future[None] | None) -> None:
    if future is not None and not future.done():
        future.set_result(None)


def _event(acceptance: Acceptance, now: datetime) -> dict[str, Any]:
    return event_row(
        acceptance.message_id,
        "provider_accepted",
        now,
        from_status=Status.SENDING.value,
        to_status=Status.SENT.value,
        data=acceptance.event_data,
    )
