"""Batched acceptances keep every per-message rule: own lease, late acceptance, parked."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncConnection

from smsrelay.dispatch.acceptances import Acceptance, AcceptanceWriter
from smsrelay.dispatch.dispatcher import DispatchConfig
from smsrelay.domain.status import Status
from smsrelay.providers.base import Outcome, SendResult
from smsrelay.services.delivery import StatusUpdate, apply_status_update
from smsrelay.store.claims import claim_due
from smsrelay.store.database import Database
from smsrelay.store.outbox import OutboxRepository
from tests.integration.world import Clock, World


@pytest.fixture
async def world(db: Database) -> World:
    return await World.create(db, Clock(), config=DispatchConfig(lease_seconds=30))


class CountingDatabase:
    """The database, counting the transactions opened through it."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.transactions = 0

    async def write(self, work: Callable[[AsyncConnection], Awaitable[Any]]) -> Any:
        self.transactions += 1
        return await self.db.write(work)


async def test_concurrent_acceptances_keep_each_messages_rules(world: World) -> None:
    first, taken_over, raced = [await world.submit(body=f"Hi {i}") for i in range(3)]
    worker = world.dispatcher("w1")
    async with world.db.transaction() as connection:
        rows = await claim_due(connection, "w1", world.clock.now, timedelta(seconds=30), 5)
        # Another worker took this one over while w1's request was on its way.
        await OutboxRepository(connection).update(taken_over, lease_owner="w2")
    early = StatusUpdate("SMraced", Status.DELIVERED, "delivered", "k1", world.clock.now)
    assert await apply_status_update(world.db, early) == "unmatched"
    sids = {first: "SMfirst", taken_over: "SMtaken", raced: "SMraced"}

    await asyncio.gather(
        *(
            worker.record_result(
                row, SendResult(Outcome.ACCEPTED, provider_message_id=sids[row["id"]])
            )
            for row in rows
        )
    )

    assert (await world.row(first))["status"] == "sent"
    other = await world.row(taken_over)
    assert (other["status"], other["lease_owner"]) == ("sending", "w2")
    assert other["provider_message_id"] == "SMtaken"  # kept for the new owner's reconciliation
    assert (await world.row(raced))["status"] == "delivered"
    for outbox_id in sids:
        assert "provider_accepted" in await world.kinds(outbox_id)


async def test_acceptances_arriving_together_share_a_transaction(world: World) -> None:
    ids = [await world.submit(body=f"Hi {i}") for i in range(5)]
    async with world.db.transaction() as connection:
        await claim_due(connection, "w1", world.clock.now, timedelta(seconds=30), 5)
    counting = CountingDatabase(world.db)
    writer = AcceptanceWriter(counting, "w1", world.clock, _never_late)  # type: ignore[arg-type]

    parked = await asyncio.gather(
        *(writer.record(Acceptance(outbox_id, f"SM{i}", {})) for i, outbox_id in enumerate(ids))
    )

    assert parked == [False] * 5 and counting.transactions == 1
    assert {(await world.row(i))["status"] for i in ids} == {"sent"}


async def test_a_lingering_writer_waits_for_company_before_it_writes(world: World) -> None:
    ids = [await world.submit(body=f"Hi {i}") for i in range(4)]
    async with world.db.transaction() as connection:
        await claim_due(connection, "w1", world.clock.now, timedelta(seconds=30), 4)
    counting = CountingDatabase(world.db)
    patient = _lingering(counting, world, linger_seconds=30.0)

    first = asyncio.create_task(patient.record(Acceptance(ids[0], "SM0", {})))
    await asyncio.sleep(0.05)  # the database is free, but one acceptance waits for company
    assert counting.transactions == 0 and not first.done()
    rest = [patient.record(Acceptance(i, f"SM{n}", {})) for n, i in enumerate(ids[1:3], 1)]
    await asyncio.wait_for(asyncio.gather(first, *rest), 5.0)  # the third fills the batch
    assert counting.transactions == 1

    brief = _lingering(counting, world, linger_seconds=0.05)
    started = asyncio.get_running_loop().time()
    await asyncio.wait_for(brief.record(Acceptance(ids[3], "SM3", {})), 5.0)  # alone, at last
    assert asyncio.get_running_loop().time() - started >= 0.04
    assert counting.transactions == 2
    assert {(await world.row(i))["status"] for i in ids} == {"sent"}


def _lingering(db: CountingDatabase, world: World, linger_seconds: float) -> AcceptanceWriter:
    return AcceptanceWriter(
        db,  # type: ignore[arg-type]
        "w1",
        world.clock,
        _never_late,
        fill=3,
        linger_seconds=linger_seconds,
    )


class SlowToOpenDatabase(CountingDatabase):
    """Each transaction opens only once `opened` is set, as when another writer holds SQLite."""

    def __init__(self, db: Database) -> None:
        super().__init__(db)
        self.opened = asyncio.Event()

    async def write(self, work: Callable[[AsyncConnection], Awaitable[Any]]) -> Any:
        await self.opened.wait()
        return await super().write(work)


async def test_acceptances_arriving_while_the_database_is_busy_join_the_batch(
    world: World,
) -> None:
    ids = [await world.submit(body=f"Hi {i}") for i in range(3)]
    async with world.db.transaction() as connection:
        await claim_due(connection, "w1", world.clock.now, timedelta(seconds=30), 3)
    slow = SlowToOpenDatabase(world.db)
    writer = AcceptanceWriter(slow, "w1", world.clock, _never_late)  # type: ignore[arg-type]
    first = asyncio.create_task(writer.record(Acceptance(ids[0], "SM0", {})))
    await asyncio.sleep(0.01)  # its write has started and waits for the database

    later = [
        asyncio.create_task(writer.record(Acceptance(i, f"SM{n}", {})))
        for n, i in enumerate(ids[1:], 1)
    ]
    await asyncio.sleep(0.01)  # both are waiting for their batch
    slow.opened.set()
    await asyncio.gather(first, *later)

    assert slow.transactions == 1
    assert {(await world.row(i))["status"] for i in ids} == {"sent"}


async def test_a_failed_batch_fails_every_sender_in_it(world: World) -> None:
    broken = AcceptanceWriter(_Broken(), "w1", world.clock, _never_late)  # type: ignore[arg-type]
    results = await asyncio.gather(
        *(broken.record(Acceptance(f"sms_{i}", f"SM{i}", {})) for i in range(3)),
        return_exceptions=True,
    )
    assert all(isinstance(result, ConnectionError) for result in results)
    # The message stays `sending` on its lease: the reconciler asks the provider later.


class _Broken:
    async def write(self, work: Callable[[AsyncConnection], Awaitable[Any]]) -> Any:
        raise ConnectionError("database unreachable")


async def _never_late(*_: object) -> None:
    raise AssertionError("no acceptance here lost its lease")
