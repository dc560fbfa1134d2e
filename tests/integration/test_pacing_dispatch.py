"""The dispatcher paces each sender: books what fits soon, puts the rest back until its turn."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from smsrelay.dispatch.buckets import MemoryBuckets, RedisBuckets
from smsrelay.dispatch.dispatcher import Dispatcher
from smsrelay.dispatch.pacing import PacingConfig, ProviderSenders, SenderPacer
from smsrelay.domain.status import Status
from smsrelay.services.tenants import create_tenant
from smsrelay.services.throughput import set_sender_rate
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
    dispatcher = paced(world)
    await dispatcher.run_once()
    await dispatcher.drain()
    assert len(world.provider.requests) == 2  # now and one second later: within the horizon
    deferred = [await world.row(outbox_id) for outbox_id in ids[2:]]
    assert {row["status"] for row in deferred} == {Status.PENDING.value}
    assert [row["attempt_count"] for row in deferred] == [0, 0, 0]  # a deferral is no attempt
    turns = [row["next_attempt_at"] - start for row in deferred]
    # Claimed again half a horizon before each projected turn (2 s, 3 s, 4 s from now).
    assert turns == [timedelta(seconds=s - 0.75) for s in (2, 3, 4)]
    assert "pacing_deferred" in await world.kinds(ids[2])


async def test_a_multi_segment_message_costs_its_segments(world: World) -> None:
    long_text = "x" * 300  # 2 segments
    await world.submit(body=long_text)
    second = await world.submit(body="short")
    dispatcher = paced(world, horizon_seconds=3.0)
    await dispatcher.run_once()
    await dispatcher.drain()
    assert len(world.provider.requests) == 2
    row = await world.row(second)
    # The 2-segment message held the sender for 2 s before the next one could start.
    assert row["sent_at"] - row["last_attempt_at"] == timedelta(seconds=2)


async def test_a_send_woken_too_late_for_its_slot_is_released_not_sent(world: World) -> None:
    first, second = await world.submit(body="one"), await world.submit(body="two")
    dispatcher = paced(world, late_by=0.5, guard_seconds=0.2)
    await dispatcher.run_once()
    await dispatcher.drain()
    assert len(world.provider.requests) == 1  # the first slot is now: no sleep, no lateness
    late = await world.row(second)
    assert late["status"] == Status.PENDING.value and late["attempt_count"] == 0
    assert "claim_released" in await world.kinds(second)
    assert (await world.row(first))["status"] == Status.SENT.value


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
    dispatcher = paced(world, carrier=False, horizon_seconds=1.0)
    await dispatcher.run_once()
    await dispatcher.drain()
    assert len(world.provider.requests) == 3  # at 0, 0.5 and 1.0 s: 2 segments a second


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
