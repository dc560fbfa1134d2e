"""Bookings shared by several "processes" (engines / clients) on one database or one Redis."""

from __future__ import annotations

import asyncio
import os
import random
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import redis.asyncio as redis

from smsrelay.dispatch.buckets import REDIS_PREFIX, Buckets, MemoryBuckets, RedisBuckets
from smsrelay.domain.reservations import Booking, Terms
from smsrelay.store.database import Database
from smsrelay.store.pacing import DatabaseBuckets
from tests.windows import max_in_window

REDIS_URL = os.environ.get("SMSRELAY_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
KEY = "simulator|+15005550006"
RATE = 20

MakeBuckets = Callable[[], Awaitable[Buckets]]


@pytest.fixture(params=["database", "redis", "memory"])
async def make_buckets(
    request: pytest.FixtureRequest, database_url: str, db: Database
) -> AsyncIterator[MakeBuckets]:
    """A factory of independent stores on one shared state (a new engine or client each)."""
    made: list[Buckets] = []
    engines: list[Database] = []
    shared = MemoryBuckets()
    if request.param == "redis":
        client = redis.Redis.from_url(REDIS_URL)
        await client.delete(REDIS_PREFIX + KEY)
        await client.aclose()

    async def make() -> Buckets:
        if request.param == "memory":
            return shared
        if request.param == "redis":
            made.append(RedisBuckets(REDIS_URL))
            return made[-1]
        engines.append(Database(database_url))
        return DatabaseBuckets(engines[-1])

    yield make
    for buckets in made:
        await buckets.close()
    for engine in engines:
        await engine.dispose()


async def test_concurrent_bookings_never_share_a_window(make_buckets: MakeBuckets) -> None:
    stores = [await make_buckets() for _ in range(3)]
    terms = Terms(RATE, window=1.0, horizon=2.0)
    rng = random.Random(3)  # which store and how many: not security
    booked: list[tuple[float, int]] = []

    async def worker(index: int) -> None:
        for round_ in range(15):
            now = 1_000.0 + round_ * 0.2 + index * 0.01
            costs = [rng.choice([1, 1, 2]) for _ in range(rng.randint(1, 6))]
            bookings = await rng.choice(stores).book(KEY, now, costs, terms)
            booked.extend(_started(bookings, costs))

    await asyncio.gather(*(worker(i) for i in range(6)))
    assert booked, "nothing was booked"
    assert len({start for start, _ in booked}) == len(booked)  # no slot handed out twice
    assert max_in_window(booked) <= RATE


async def test_deferred_bookings_continue_from_where_another_store_left_off(
    make_buckets: MakeBuckets,
) -> None:
    first, second = await make_buckets(), await make_buckets()
    terms = Terms(1, window=1.0, horizon=1.5)
    assert [b.start for b in await first.book(KEY, 0.0, [1, 1, 1], terms)] == [0.0, 1.0, None]
    assert await second.book(KEY, 0.2, [1], terms) == [Booking(None, 3.0)]


def _started(bookings: list[Booking], costs: list[int]) -> list[tuple[float, int]]:
    return [(b.start, c) for b, c in zip(bookings, costs, strict=True) if b.start is not None]


async def test_a_write_reported_through_one_store_moves_the_next_booking_of_another(
    make_buckets: MakeBuckets,
) -> None:
    """Slots survive the state's JSON form exactly, so a report finds its booking."""
    first, second = await make_buckets(), await make_buckets()
    terms = Terms(2, window=1.0, horizon=1.0, tolerance=0.2)
    now = 1_764_400_000.123456
    slots = [b.start for b in await first.book(KEY, now, [1, 1], terms)]
    assert slots == [now, now + 0.5]
    written = [(slots[0], now + 0.031), (slots[1], now + 0.5)]  # the first went 31 ms late
    later = await second.book(KEY, now + 0.6, [1, 1], terms, written)
    # Not within 1 s of the late one: 1.031 s on, not 1 s; the next keeps its place.
    assert [b.start for b in later] == pytest.approx([now + 1.031, now + 1.5], abs=1e-5)
