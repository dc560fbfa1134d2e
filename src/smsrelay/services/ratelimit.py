"""Rate limiting by key (client IP, API key), in memory or shared through Redis."""

from __future__ import annotations

import math
import time
from typing import Any

import limits
from limits.aio.storage import MemoryStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter, SlidingWindowCounterRateLimiter
from limits.errors import StorageError
from limits.storage import storage_from_string
from redis.asyncio import ConnectionPool

from smsrelay.logs import get_logger
from smsrelay.services.errors import RateLimited

log = get_logger("smsrelay.ratelimit")
# A slow or absent Redis must not hold requests up for long.
REDIS_TIMEOUT_SECONDS = 1.0
# A moving window keeps one timestamp per request it holds, and each request costs time in
# proportion to them; above this many per window a sliding-window counter (two counts per key,
# the previous window's weighted by how much of it still overlaps) keeps every request O(1).
MOVING_WINDOW_MAX = 1000


class RateLimiter:
    """A limit such as `3/5minute`, shared across processes when Redis is used.

    Exact (a moving window) up to `MOVING_WINDOW_MAX` requests per window; a sliding-window
    counter above that.
    """

    def __init__(self, rule: str, storage_url: str | None = None) -> None:
        self.rule = limits.parse(rule)
        self._pool = _redis_pool(storage_url) if storage_url else None
        storage = _shared(storage_url, self._pool) if storage_url else MemoryStorage()
        self.limiter: MovingWindowRateLimiter | SlidingWindowCounterRateLimiter
        if self.rule.amount <= MOVING_WINDOW_MAX:
            self.limiter = MovingWindowRateLimiter(storage)
        else:
            self.limiter = SlidingWindowCounterRateLimiter(storage)

    async def close(self) -> None:
        """Close the connections to the shared storage, if any."""
        if self._pool is not None:
            await self._pool.disconnect()

    async def check(self, scope: str, key: str) -> None:
        """Count one request for `key`; raise `RateLimited` with the wait when over the limit.

        When the shared storage is unreachable the request is let through and the outage logged:
        losing the limit for a moment is better than refusing every caller.
        """
        try:
            if await self.limiter.hit(self.rule, scope, key):
                return
            stats = await self.limiter.get_window_stats(self.rule, scope, key)
        except StorageError as exc:
            log.error(
                "ratelimit.storage_unavailable", scope=scope, error=type(exc.storage_error).__name__
            )
            return
        wait = max(1, math.ceil(stats.reset_time - time.time()))
        raise RateLimited(f"rate limit of {self.rule} exceeded; try again in {wait} s", wait)


def _redis_pool(storage_url: str) -> ConnectionPool | None:
    if not storage_url.startswith(("redis://", "rediss://")):
        return None
    return ConnectionPool.from_url(
        storage_url,
        socket_timeout=REDIS_TIMEOUT_SECONDS,
        socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
    )


def _shared(storage_url: str, pool: ConnectionPool | None) -> Storage:
    options: dict[str, Any] = {"wrap_exceptions": True}
    if pool is not None:
        options |= {"implementation": "redispy", "connection_pool": pool}
    storage = storage_from_string(f"async+{storage_url}", **options)
    if not isinstance(storage, Storage):
        raise TypeError(f"{storage_url} is not an async rate-limit storage")
    return storage
