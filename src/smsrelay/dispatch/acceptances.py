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

from sqlalchemy import String, bindparam, func, insert, select, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection

from smsrelay.domain.status import Status
from smsrelay.services.delivery import error_columns
from smsrelay.store.claims import moment, rechecked
from smsrelay.store.database import Database
from smsrelay.store.outbox import OutboxRepository, event_row
from smsrelay.store.tables import message_events, messages, unmatched_callbacks

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
        moved = await _mark_sent(connection, self.worker, batch, now)
        outbox = OutboxRepository(connection)
        for item in batch:
            if item.message_id not in moved:
                await self.on_late(outbox, item.message_id, item.provider_message_id, now)
        return await _parked_among(connection, [a.provider_message_id for a in batch])


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


async def _mark_sent(
    connection: AsyncConnection, worker: str, batch: list[Acceptance], now: datetime
) -> set[str]:
    """`sent` for the batch's messages still `sending` on this worker's lease; their ids.

    Statements compiled once whatever the batch's size (a CASE over the batch was a new
    statement of n branches to build, key and compile per batch). PostgreSQL: one
    compare-and-set joined to the batch's ids and provider ids (unnest), so each message is
    updated once (a second update for the id is a second row version and index entries).
    SQLite: the compare-and-set over the ids, then the moved ones' provider ids in one
    executemany (cheaper here than binding every column for each message).
    """
    if connection.dialect.name == "postgresql":
        ordered = sorted(batch, key=lambda a: a.message_id)  # rows locked in id order, as
        params = {  # the other batch writers lock them (no deadlock between two batches)
            "v_ids": [a.message_id for a in ordered],
            "v_sids": [a.provider_message_id for a in ordered],
            "v_worker": worker,
            "v_sent_at": now,
            "v_updated_at": now,
        }
        return set((await connection.execute(_MARK_SENT_JOINED, params)).scalars())
    params = {"v_ids": [a.message_id for a in batch], "v_worker": worker}
    moved = set(
        (
            await connection.execute(_MARK_SENT, params | {"v_sent_at": now, "v_updated_at": now})
        ).scalars()
    )
    sids = [
        {"v_id": a.message_id, "v_sid": a.provider_message_id}
        for a in batch
        if a.message_id in moved
    ]
    if sids:
        await connection.execute(_SET_SID, sids)
    return moved


_SENT_VALUES: dict[str, Any] = {
    "status": Status.SENT.value,
    "sent_at": moment("v_sent_at"),
    "updated_at": moment("v_updated_at"),
    "lease_owner": None,
    "lease_expires_at": None,
    "needs_reconcile": 0,
    **error_columns(None),
}
_BATCH = (
    func.unnest(
        bindparam("v_ids", type_=postgresql.ARRAY(String)),
        bindparam("v_sids", type_=postgresql.ARRAY(String)),
    )
    .table_valued("id", "sid")
    .render_derived(name="batch")
)
_MARK_SENT_JOINED = (
    update(messages)
    .where(
        messages.c.id == _BATCH.c.id,
        messages.c.status == Status.SENDING.value,
        messages.c.lease_owner == bindparam("v_worker"),
    )
    .values(provider_message_id=_BATCH.c.sid, **_SENT_VALUES)
    .returning(messages.c.id)
)
_MARK_SENT = (
    update(messages)
    .where(
        messages.c.id.in_(bindparam("v_ids", expanding=True)),
        rechecked(messages.c.status) == Status.SENDING.value,
        messages.c.lease_owner == bindparam("v_worker"),
    )
    .values(**_SENT_VALUES)
    .returning(messages.c.id)
)
_SET_SID = (
    update(messages)
    .where(messages.c.id == bindparam("v_id"))
    .values(provider_message_id=bindparam("v_sid", type_=String))
)


async def _parked_among(connection: AsyncConnection, sids: list[str | None]) -> set[str | None]:
    """The ids among `sids` that a status callback reached before the send was recorded."""
    known = [sid for sid in sids if sid]
    if not known:
        return set()
    return set((await connection.execute(_PARKED_AMONG, {"v_sids": known})).scalars())


_PARKED_AMONG = select(unmatched_callbacks.c.provider_message_id).where(
    unmatched_callbacks.c.provider_message_id.in_(bindparam("v_sids", expanding=True))
)
