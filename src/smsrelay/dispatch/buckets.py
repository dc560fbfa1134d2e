"""Where senders' reservation state lives: in memory (one process, tests) or Redis (shared).

Every store applies `reservations.book` to one sender's state atomically, so bookings made by
any number of worker processes never overlap; the database store is in `store/pacing.py`.
"""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from typing import Protocol

from redis.asyncio import Redis
from redis.exceptions import WatchError

from smsrelay.domain.reservations import Booking, Bucket, Terms, Written, book

# A slow or absent Redis must not hold a dispatch round up for long.
REDIS_TIMEOUT_SECONDS = 1.0
REDIS_PREFIX = "smsrelay:pacing:"
# Optimistic transactions retried this often before the round gives the sender up.
MAX_CONFLICTS = 100


class Buckets(Protocol):
    """Atomic bookings against one sender's shared state."""

    async def book(
        self,
        key: str,
        now: float,
        costs: list[int],
        terms: Terms,
        written: Written = (),
    ) -> list[Booking]:
        """Confirm when booked requests were `written` ((slot, moment) pairs), then book
        `costs` in order for the sender `key`; see `reservations.book`."""
        ...

    async def close(self) -> None: ...


class MemoryBuckets:
    """One process's buckets, behind a lock per sender (for tests and single-process use)."""

    def __init__(self) -> None:
        self.state: dict[str, Bucket] = defaultdict(Bucket)
        self._locks: dict[str, asyncio.Lock] = defaultdict(asyncio.Lock)

    async def book(
        self,
        key: str,
        now: float,
        costs: list[int],
        terms: Terms,
        written: Written = (),
    ) -> list[Booking]:
        async with self._locks[key]:
            return book(self.state[key], now, costs, terms, written)

    async def close(self) -> None:
        return None


class RedisBuckets:
    """Buckets shared through Redis: each booking is a WATCH/MULTI compare-and-set on one key."""

    def __init__(self, url: str) -> None:
        self.redis: Redis = Redis.from_url(
            url,
            socket_timeout=REDIS_TIMEOUT_SECONDS,
            socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
        )

    async def book(
        self,
        key: str,
        now: float,
        costs: list[int],
        terms: Terms,
        written: Written = (),
    ) -> list[Booking]:
        name = REDIS_PREFIX + key
        async with self.redis.pipeline(transaction=True) as pipe:
            for _ in range(MAX_CONFLICTS):
                try:
                    await pipe.watch(name)
                    raw = await pipe.get(name)
                    bucket = Bucket.from_json(json.loads(raw) if raw else None)
                    bookings = book(bucket, now, costs, terms, written)
                    pipe.multi()  # type: ignore[no-untyped-call]  # redis-py leaves it untyped
                    pipe.set(name, json.dumps(bucket.to_json()), ex=_ttl(bucket, now))
                    await pipe.execute()
                    return bookings
                except WatchError:
                    continue
        raise RuntimeError(f"pacing state of one sender changed {MAX_CONFLICTS} times in a row")

    async def close(self) -> None:
        await self.redis.aclose()


def _ttl(bucket: Bucket, now: float) -> int:
    """Keep a sender's state a minute past its last booking or projection, then let it go."""
    return max(60, int(max(bucket.tat, bucket.tail) - now) + 60)
