"""The dispatcher paces each sender: books what fits soon, puts the rest back until its turn."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from smsrelay.dispatch.buckets import MemoryBuckets, RedisBuckets
from smsrelay.dispatch.dispatcher import Dispatcher
from smsrelay.dispatch.pacing import PacingConfig, ProviderSenders, SenderPacer
from smsrelay.domain.reservations import Terms
from smsrelay.domain.status import Status
from smsrelay.services.tenants import create_tenant
from smsrelay.services.throughput import set_sender_rate
from smsrelay.store.claims import claim_due
from smsrelay.store.database import Database
from tests.integration.world import Clock, World

SENDER = "+15005550006"  # a long code: 1 segment per second on a carrier


@pytest.fixture
async def world(db: Database) -> World:
    return await World.create(db, Clock())


def paced(
    world: World, *, carrier: bool = True, late_by: float = 0.0, **config: float
) -> Dispatcher:
    """A dispatcher whose pacer runs on the world's clock; sleeping moves that clock on."""

    async def sleep(seconds: float) -> None:
        world.clock.advance(seconds + late_by)

    settings = PacingConfig(
        providers={"fake": ProviderSenders(SENDER, paced_by_default=carrier)},
        guard_seconds=config.pop("guard_seconds", 0.0),
        horizon_seconds=config.pop("horizon_seconds", 1.5),
    )
    dispatcher = world.dispatcher()
    dispatcher.pacer = SenderPacer(
        world.db, MemoryBuckets(), settings, clock=lambda: world.clock.now.timestamp(), sleep=sleep
    )
    return dispatcher


async def test_what_a_sender_cannot_send_soon_is_put_back_until_its_turn(world: World) -> None:
    ids = [await world.submit(body=f"message {n}") for n in range(5)]
    start = world.clock.now
    dispatcher = paced(world, horizon_seconds=0.5)
    await dispatcher.run_once()
    await dispatcher.drain()
    assert len(world.provider.requests) == 1  # the next slot is a second away: past the horizon
    deferred = [await world.row(outbox_id) for outbox_id in ids[1:]]
    assert {row["status"] for row in deferred} == {Status.PENDING.value}
    assert [row["attempt_count"] for row in deferred] == [0, 0, 0, 0]  # no attempt was made
    turns = [row["next_attempt_at"] - start for row in deferred]
    # Claimed again half a horizon before each projected turn (1 s, 2 s, 3 s, 4 s from now).
    assert turns == [timedelta(seconds=s - 0.25) for s in (1, 2, 3, 4)]
    assert "pacing_deferred" in await world.kinds(ids[1])


async def test_a_multi_segment_message_costs_its_segments(world: World) -> None:
    await world.submit(body="x" * 300)  # 2 segments
    await world.submit(body="short")
    dispatcher = paced(world, horizon_seconds=3.0)
    async with world.db.transaction() as connection:
        rows = await claim_due(connection, "w1", world.clock.now, timedelta(seconds=60), 10)
    plan = await dispatcher.pacer.plan(sorted(rows, key=lambda row: row["segments"], reverse=True))
    now = world.clock.now.timestamp()
    # The 2-segment message holds the 1-segment/s sender for 2 s before the next may start.
    assert [start for _, start in plan.send] == [now, now + 2]


async def test_a_send_woken_too_late_for_its_slot_is_released_not_sent(world: World) -> None:
    outbox_id = await world.submit(body="one")
    dispatcher = paced(world, late_by=0.5, guard_seconds=0.2)
    assert isinstance(dispatcher.pacer, SenderPacer)
    terms = Terms(1, window=1.2, horizon=2.0)  # another worker took the slot of now
    await dispatcher.pacer.buckets.book(f"fake|{SENDER}", world.clock.now.timestamp(), [1], terms)
    await dispatcher.run_once()
    await dispatcher.drain()
    assert world.provider.requests == []  # woke 0.5 s after its slot, more than the guard
    late = await world.row(outbox_id)
    assert late["status"] == Status.PENDING.value and late["attempt_count"] == 0
    assert "claim_released" in await world.kinds(outbox_id)


async def test_a_non_carrier_is_not_paced_without_a_rate(world: World) -> None:
    for n in range(5):
        await world.submit(body=f"message {n}")
    dispatcher = paced(world, carrier=False)
    await dispatcher.run_once()
    await dispatcher.drain()
    assert len(world.provider.requests) == 5


async def test_a_tenant_rate_paces_any_provider(world: World) -> None:
    await set_sender_rate(world.db, world.principal.tenant_id, SENDER, 2, None, datetime.now(UTC))
    for n in range(5):
        await world.submit(body=f"message {n}")
    dispatcher = paced(world, carrier=False, horizon_seconds=0.4)
    await dispatcher.run_once()
    await dispatcher.drain()
    assert len(world.provider.requests) == 1  # the next slot, 0.5 s away, is past the horizon


async def test_another_tenants_rate_does_not_pace_our_messages(world: World) -> None:
    other = await create_tenant(world.db, "other")
    await set_sender_rate(world.db, other.tenant_id, SENDER, 1, None, datetime.now(UTC))
    for n in range(5):
        await world.submit(body=f"message {n}")
    dispatcher = paced(world, carrier=False)
    await dispatcher.run_once()
    await dispatcher.drain()
    assert len(world.provider.requests) == 5


async def test_unreachable_pacing_state_holds_the_sender_instead_of_overrunning_it(
    world: World,
) -> None:
    outbox_id = await world.submit(body="hello")
    dispatcher = paced(world)
    assert isinstance(dispatcher.pacer, SenderPacer)
    dispatcher.pacer.buckets = RedisBuckets("redis://127.0.0.1:1/0")  # nothing listens there
    try:
        await dispatcher.run_once()
        await dispatcher.drain()
    finally:
        await dispatcher.pacer.close()
    assert world.provider.requests == []
    row = await world.row(outbox_id)
    assert row["status"] == Status.PENDING.value
    assert row["next_attempt_at"] - world.clock.now == timedelta(seconds=5)
