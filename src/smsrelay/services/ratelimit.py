"""Rate limiting by key (client IP, API key), in memory or shared through Redis."""

from __future__ import annotations

import math
import time

import limits
from limits.aio.storage import MemoryStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string

from smsrelay.services.errors import RateLimited


class RateLimiter:
    """A moving-window limit such as `3/5minute`, shared across processes when Redis is used."""

    def __init__(self, rule: str, storage_url: str | None = None) -> None:
        self.rule = limits.parse(rule)
        storage = _shared(storage_url) if storage_url else MemoryStorage()
        self.limiter = MovingWindowRateLimiter(storage)

    async def check(self, scope: str, key: str) -> None:
        """Count one request for `key`; raise `RateLimited` with the wait when over the limit."""
        if await self.limiter.hit(self.rule, scope, key):
            return
        stats = await self.limiter.get_window_stats(self.rule, scope, key)
        wait = max(1, math.ceil(stats.reset_time - time.time()))
        raise RateLimited(f"rate limit of {self.rule} exceeded; try again in {wait} s", wait)


def _shared(storage_url: str) -> Storage:
    storage = storage_from_string(f"async+{storage_url}")
    if not isinstance(storage, Storage):
        raise TypeError(f"{storage_url} is not an async rate-limit storage")
    return storage
