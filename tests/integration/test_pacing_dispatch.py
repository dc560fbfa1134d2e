"""The dispatcher paces each sender: books what fits soon, puts the rest back until its turn."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import aiohttp
import pytest
from aiohttp import web

from smsrelay.dispatch.buckets import MemoryBuckets, RedisBuckets
from smsrelay.dispatch.dispatcher import Dispatcher
from smsrelay.dispatch.pacing import PacingConfig, ProviderSenders, SenderPacer, put_back
from smsrelay.domain.reservations import Booking, Terms
from smsrelay.domain.status import Status
from smsrelay.providers.http_support import wire_tracing
from smsrelay.services.consent import suppress
from smsrelay.services.tenants import create_tenant
from smsrelay.services.throughput import set_sender_rate
from smsrelay.store.claims import claim_due
from smsrelay.store.database import Database
from tests.integration.world import Clock, World
from tests.windows import max_in_window

SENDER = "+15005550006"  # a long code: 1 segment per second on a carrier


@pytest.fixture
async def world(db: Database) -> World:
    return await World.create(db, Clock())


def paced(
    world: World,
    *,
    carrier: bool = True,
    late_by: float = 0.0,
    late: list[float] | None = None,
    **config: float,
) -> Dispatcher:
    """A dispatcher whose pacer runs on the world's clock; sleeping moves that clock on, and
    wakes `late_by` late, or each of `late` in turn and then on time."""

    async def sleep(seconds: float) -> None:
        world.clock.advance(seconds + (late.pop(0) if late else late_by))

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


async def test_a_send_that_misses_its_slot_is_booked_again_in_process_not_put_back(
    world: World,
) -> None:
    outbox_id = await world.submit(body="one")
    dispatcher = paced(world, late=[0.5], guard_seconds=0.2)
    assert isinstance(dispatcher.pacer, SenderPacer)
    start = world.clock.now.timestamp()
    terms = Terms(1, window=1.2, horizon=1.5)  # another worker took the slot of now
    await dispatcher.pacer.buckets.book(f"fake|{SENDER}", start, [1], terms)
    await dispatcher.run_once()
    await dispatcher.drain()
    # Its slot (1.2 s) passed while it slept (woke at 1.7 s): it took the next one, 2.4 s.
    assert len(world.provider.requests) == 1
    assert world.clock.now.timestamp() - start == pytest.approx(2.4)
    sent = await world.row(outbox_id)
    assert sent["status"] == Status.SENT.value and sent["attempt_count"] == 1
    kinds = await world.kinds(outbox_id)
    assert "claim_released" not in kinds and "pacing_deferred" not in kinds


async def test_a_stop_that_comes_while_a_send_is_booked_again_stops_that_send(
    world: World,
) -> None:
    to = "+14155550199"
    outbox_id = await world.submit(to=to, body="one")
    dispatcher = paced(world, late=[0.5], guard_seconds=0.2)
    assert isinstance(dispatcher.pacer, SenderPacer)
    pacer_sleep = dispatcher.pacer.sleep

    async def sleep_then_stop(seconds: float) -> None:  # the STOP commits during the first wait
        await pacer_sleep(seconds)
        if not await world.kinds(outbox_id) or "consent_blocked" not in await world.kinds(
            outbox_id
        ):
            await suppress(world.db, world.principal.tenant_id, to, "manual", None, world.clock.now)

    dispatcher.pacer.sleep = sleep_then_stop
    start = world.clock.now.timestamp()
    terms = Terms(1, window=1.2, horizon=1.5)  # another worker took the slot of now
    await dispatcher.pacer.buckets.book(f"fake|{SENDER}", start, [1], terms)
    await dispatcher.run_once()
    await dispatcher.drain()
    assert world.provider.requests == []
    assert (await world.row(outbox_id))["status"] == Status.SUPPRESSED.value


async def test_a_send_late_for_every_slot_it_is_given_is_released_not_sent(world: World) -> None:
    outbox_id = await world.submit(body="one")
    dispatcher = paced(world, late_by=0.5, guard_seconds=0.2)
    assert isinstance(dispatcher.pacer, SenderPacer)
    terms = Terms(1, window=1.2, horizon=2.0)  # another worker took the slot of now
    await dispatcher.pacer.buckets.book(f"fake|{SENDER}", world.clock.now.timestamp(), [1], terms)
    await dispatcher.run_once()
    await dispatcher.drain()
    assert world.provider.requests == []  # woke 0.5 s after each slot, more than the guard
    late = await world.row(outbox_id)
    assert late["status"] == Status.PENDING.value and late["attempt_count"] == 0
    assert "claim_released" in await world.kinds(outbox_id)


async def test_a_backlog_leaves_evenly_spaced_with_no_second_over_the_rate(world: World) -> None:
    """Rounds as a dispatcher runs them (claim, book, send on each slot and report it, put the
    rest back): 10 segments/s, no guard, horizon 0.5 s, on the world's clock."""
    await set_sender_rate(world.db, world.principal.tenant_id, SENDER, 10, None, world.clock.now)
    for n in range(45):
        await world.submit(body=f"message {n}")
    dispatcher = paced(world, horizon_seconds=0.5)
    pacer = dispatcher.pacer
    assert isinstance(pacer, SenderPacer)
    sent: list[tuple[float, int]] = []
    while len(sent) < 45:
        async with world.db.transaction() as connection:
            rows = await claim_due(connection, "w1", world.clock.now, timedelta(seconds=60), 20)
        plan = await pacer.plan(rows)
        for row, start in plan.send:
            turn = await pacer.wait_turn(row, start)
            assert turn is not None
            with pacer.sending(row, turn):
                sent.append((world.clock.now.timestamp(), 1))
        await put_back(world.db, plan.later, "w1", world.clock.now)
        world.clock.advance(0.001)  # a claim round's own time
    gaps = [b[0] - a[0] for a, b in pairwise(sent)]
    assert gaps == pytest.approx([0.1] * 44, abs=1e-5)  # one slot every 1 / 10 s
    assert max_in_window(sent) == 10
    assert 44 / (sent[-1][0] - sent[0][0]) == pytest.approx(10, rel=1e-4)


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


class CountingBuckets(MemoryBuckets):
    """Memory buckets that keep the costs of each booking asked for."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: list[list[int]] = []

    async def book(
        self,
        key: str,
        at: float,
        costs: list[int],
        terms: Terms,
        written: Sequence[tuple[float, float | None]] = (),
    ) -> list[Booking]:
        if costs:  # not a report alone
            self.asked.append(costs)
        return await super().book(key, at, costs, terms, written)


async def test_sends_that_one_stall_made_miss_are_booked_again_together(world: World) -> None:
    await set_sender_rate(world.db, world.principal.tenant_id, SENDER, 10, None, world.clock.now)
    for n in range(3):
        await world.submit(body=f"message {n}")
    dispatcher = paced(world, guard_seconds=0.01)
    pacer = dispatcher.pacer
    assert isinstance(pacer, SenderPacer)
    pacer.buckets = buckets = CountingBuckets()
    async with world.db.transaction() as connection:
        rows = await claim_due(connection, "w1", world.clock.now, timedelta(seconds=60), 3)
    plan = await pacer.plan(rows)
    world.clock.advance(0.5)  # the worker stalls past all three slots
    stalled_until = world.clock.now.timestamp()
    turns = await asyncio.gather(*(pacer.wait_turn(row, start) for row, start in plan.send))
    assert buckets.asked == [[1, 1, 1], [1, 1, 1]]  # the round's booking, then one for all
    starts = [turn.start for turn in turns if turn is not None and turn.start is not None]
    assert starts[0] >= stalled_until and len(starts) == 3
    assert [b - a for a, b in pairwise(starts)] == pytest.approx([0.101, 0.101])


async def test_a_send_woken_late_goes_in_its_slot_and_the_next_second_waits_for_it(
    world: World,
) -> None:
    """Woken 30 ms late (the gate lets up to half the 0.2 s tolerance go): sent, not booked
    again; the moment it was written reaches the shared state, and the booking that would
    have put an eleventh send within one second of it starts 30 ms later instead."""
    await set_sender_rate(world.db, world.principal.tenant_id, SENDER, 10, None, world.clock.now)
    ids = [await world.submit(body=f"message {n}") for n in range(2)]
    dispatcher = paced(world, late=[0.03], horizon_seconds=0.5)
    pacer = dispatcher.pacer
    assert isinstance(pacer, SenderPacer) and isinstance(pacer.buckets, MemoryBuckets)
    start = world.clock.now.timestamp()
    await dispatcher.run_once()
    await dispatcher.drain()
    assert len(world.provider.requests) == 2  # the second, slot 0.1 s, woke at 0.13 s
    for outbox_id in ids:
        kinds = await world.kinds(outbox_id)
        assert "claim_released" not in kinds and "pacing_deferred" not in kinds
    await pacer.close()  # reports what was written
    key = f"fake|{SENDER}"
    recent = pacer.buckets.state[key].recent
    assert [slot - start for slot, _, _ in recent] == pytest.approx([0.0, 0.1], abs=1e-5)
    assert [moment - start for _, _, moment in recent] == pytest.approx([0.0, 0.13], abs=1e-5)
    terms = Terms(10, window=1.0, horizon=2.0, tolerance=0.2)
    later = await pacer.buckets.book(key, start + 0.2, [1] * 10, terms)
    starts = [b.start - start for b in later if b.start is not None]
    assert starts == pytest.approx([n / 10 for n in range(2, 11)] + [1.13], abs=1e-5)


async def test_a_request_that_would_leave_after_its_tolerance_is_refused_and_frees_its_slot(
    world: World,
) -> None:
    """The bookings of a second later count on no request leaving more than the tolerance
    after its slot; one held up past that on its way to the socket never leaves, and its slot
    is reported unused (no booking is held to it)."""
    received: list[bytes] = []

    async def handle(request: web.Request) -> web.Response:
        received.append(await request.read())
        return web.json_response({}, status=201)

    app = web.Application()
    app.router.add_post("/send", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/send"
    await set_sender_rate(world.db, world.principal.tenant_id, SENDER, 10, None, world.clock.now)
    await world.submit(body="late")
    pacer = paced(world, horizon_seconds=0.5).pacer
    assert isinstance(pacer, SenderPacer) and isinstance(pacer.buckets, MemoryBuckets)
    async with world.db.transaction() as connection:
        rows = await claim_due(connection, "w1", world.clock.now, timedelta(seconds=60), 5)
    ((row, start),) = (await pacer.plan(rows)).send
    turn = await pacer.wait_turn(row, start)
    assert turn is not None
    world.clock.advance(0.25)  # a stall between the gate and the socket, past the 0.2 s tolerance
    try:
        async with aiohttp.ClientSession(trace_configs=[wire_tracing()]) as session:
            with pytest.raises(aiohttp.ClientConnectionError), pacer.sending(row, turn):
                await session.post(url, data={"Body": "late"})
        await pacer.close()
    finally:
        await runner.cleanup()
    assert received == []
    assert pacer.buckets.state[f"fake|{SENDER}"].recent == []
