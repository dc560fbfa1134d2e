"""Concurrent calls for one key share one run of the work.

When a cached entry expires under load, every request in flight misses at once: 64 requests
would read the same row 64 times. Through `SingleFlight` the first starts the read and the
others await its result.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

Key = TypeVar("Key", bound=Hashable)
Value = TypeVar("Value")


class SingleFlight(Generic[Key, Value]):
    """`run(key, work)`: `work()` once for all callers that ask for `key` while it runs."""

    def __init__(self) -> None:
        self._running: dict[Key, asyncio.Future[Value]] = {}

    async def run(self, key: Key, work: Callable[[], Awaitable[Value]]) -> Value:
        running = self._running.get(key)
        if running is None:
            running = asyncio.ensure_future(work())
            self._running[key] = running
            running.add_done_callback(lambda done: self._finished(key, done))
        # Shielded: one caller giving up does not cancel the work the others wait for.
        return await asyncio.shield(running)

    def _finished(self, key: Key, done: asyncio.Future[Value]) -> None:
        if self._running.get(key) is done:
            del self._running[key]
        if not done.cancelled():
            done.exception()  # retrieved: every caller may have given up

    def forget(self, key: Key) -> None:
        """Callers from now on start a new run for `key` (what the running one reads is old)."""
        self._running.pop(key, None)
