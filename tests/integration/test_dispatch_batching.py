"""A busy dispatcher claims whole batches and records results apart from its send slots."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.engine import RowMapping

from smsrelay.config import load_settings
from smsrelay.dispatch.dispatcher import DispatchConfig, Dispatcher
from smsrelay.dispatch.pacing import NoPacing, Plan
from smsrelay.providers.base import SendRequest, SendResult
from smsrelay.providers.fake import FakeProvider
from smsrelay.services.provider_configs import ProviderConfigs
from smsrelay.services.provider_pool import ProviderPool
from smsrelay.store.claims import claim_due, claim_expired
from smsrelay.store.database import Database
from smsrelay.store.tables import messages
from tests.integration.world import Clock, World


@dataclass
class RoundsPacer(NoPacing):
    """Paces nothing; remembers how many messages each claim round handed over."""

    rounds: list[int] = field(default_factory=list)

    async def plan(self, rows: Sequence[RowMapping]) -> Plan:
        self.rounds.append(len(rows))
        return await super().plan(rows)


@dataclass
class StaggeredProvider(FakeProvider):
    """Answers the i-th send of each eight after i × `step` seconds; counts calls in flight."""

    step: float = 0.002
    calls: int = 0
    in_flight: int = 0
    most_in_flight: int = 0

    async def send(self, request: SendRequest) -> SendResult:
        self.calls += 1
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep((self.calls % 8) * self.step)
            return await super().send(request)
        finally:
            self.in_flight -= 1


@pytest.fixture
async def world(db: Database) -> World:
    return await World.create(db, Clock())


def _dispatcher(
    world: World, provider: FakeProvider, pacer: NoPacing, **config: float
) -> Dispatcher:
    pool = ProviderPool(ProviderConfigs(world.db, load_settings(), None), {"fake": provider})
    settings = replace(DispatchConfig(lease_seconds=30), **config)
    return Dispatcher(world.db, pool, config=settings, clock=world.clock, name="w1", pacer=pacer)


async def _sent(db: Database) -> int:
    async with db.reading() as connection:
        query = select(func.count()).where(messages.c.status == "sent")
        return int((await connection.execute(query)).scalar_one())


async def _run_until_sent(dispatcher: Dispatcher, db: Database, count: int) -> None:
    running = asyncio.create_task(dispatcher.run())
    try:
        async with asyncio.timeout(30):
            while await _sent(db) < count:
                await asyncio.sleep(0.02)
    finally:
        await dispatcher.stop()
        await running


async def test_a_busy_worker_claims_whole_batches_not_a_slot_at_a_time(world: World) -> None:
    for index in range(48):
        await world.submit(body=f"message {index}")
    provider, pacer = StaggeredProvider(name="fake", step=0.01), RoundsPacer()
    dispatcher = _dispatcher(
        world, provider, pacer, concurrency=8, batch_size=8, refill_wait_seconds=5.0
    )

    await _run_until_sent(dispatcher, world.db, 48)

    assert [size for size in pacer.rounds if size] == [8] * 6
    assert len(provider.requests) == 48


async def test_sends_in_flight_never_exceed_the_concurrency(world: World) -> None:
    for index in range(40):
        await world.submit(body=f"message {index}")
    provider = StaggeredProvider(name="fake", step=0.003)
    dispatcher = _dispatcher(world, provider, RoundsPacer(), concurrency=4, batch_size=50)

    await _run_until_sent(dispatcher, world.db, 40)

    assert provider.most_in_flight == 4
    assert len(provider.requests) == 40


async def test_a_claim_rounds_consent_check_reads_where_the_claim_wrote(world: World) -> None:
    dispatcher = _dispatcher(world, FakeProvider(name="fake"), RoundsPacer())
    await world.submit(body="warm-up")
    await dispatcher.process_all()  # the tenant's provider accounts are cached from here on
    for index in range(5):
        await world.submit(body=f"message {index}")
    readings: list[str] = []
    reading = world.db.reading

    def counted() -> Any:
        readings.append("read")
        return reading()

    world.db.reading = counted  # type: ignore[method-assign]

    assert await dispatcher.run_once() == 5
    await dispatcher.drain()

    assert readings == []  # no second connection (or SQLite hand-off) for the check
    assert await _sent(world.db) == 6


async def test_a_round_waits_for_the_sends_not_for_their_records(world: World) -> None:
    for index in range(6):
        await world.submit(body=f"message {index}")
    dispatcher = _dispatcher(
        world, FakeProvider(name="fake"), RoundsPacer(), concurrency=8, batch_size=6
    )
    dispatcher.config = replace(dispatcher.config, refill_wait_seconds=5.0)
    recorded = asyncio.Event()
    dispatcher._start(recorded.wait(), holds_slot=False)  # a record waiting for its batch
    for _ in range(3):  # three sends the provider answers soon: 5 slots free, not a batch
        dispatcher._start(asyncio.sleep(0.01))

    async with asyncio.timeout(1.0):  # not the 5 s a round may wait for the slots
        assert await dispatcher.run_once() == 6

    recorded.set()
    await dispatcher.drain()
    assert await _sent(world.db) == 6


@pytest.mark.parametrize("limit", [0, -1])
async def test_a_claim_for_no_slots_takes_nothing(world: World, limit: int) -> None:
    await world.submit()
    now, lease = world.clock.now, timedelta(seconds=30)

    async with world.db.transaction() as connection:
        taken = await claim_expired(connection, "w1", now, lease, limit)
        claimed = await claim_due(connection, "w1", now, lease, limit)

    assert (taken, claimed) == ([], [])
    assert (await world.row(await _pending_id(world.db)))["status"] == "pending"


async def _pending_id(db: Database) -> str:
    async with db.reading() as connection:
        query = select(messages.c.id).where(messages.c.status == "pending")
        return str((await connection.execute(query)).scalar_one())


@pytest.fixture
async def sqlite_world(tmp_path: Path) -> AsyncIterator[World]:
    """A world on a SQLite file whatever database the suite runs on (a planner property)."""
    db = Database(f"sqlite:///{tmp_path / 'planner.db'}")
    await db.migrate()
    try:
        yield await World.create(db, Clock())
    finally:
        await db.dispose()


async def test_a_claim_looks_its_rows_up_by_primary_key_on_sqlite(sqlite_world: World) -> None:
    world = sqlite_world
    for index in range(30):
        await world.submit(body=f"message {index}")
    updates: list[tuple[str, Any]] = []

    def keep(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.startswith("UPDATE messages"):
            updates.append((statement, parameters))

    engine = world.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", keep)
    try:
        async with world.db.transaction() as connection:
            await claim_due(connection, "w1", world.clock.now, timedelta(seconds=30), 10)
            plans = [
                await connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", params)
                for sql, params in updates
            ]
            details = [str(row[-1]) for plan in plans for row in plan.all()]
    finally:
        event.remove(engine, "before_cursor_execute", keep)

    assert details and all("sqlite_autoindex_messages_1 (id=?)" in d for d in details), details
