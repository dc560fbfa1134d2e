"""Values read from the database at most once every few seconds per key, not per request.

What a request reads about its caller (an API key, a tenant's prices and provider accounts, an
account's webhook signing keys) changes rarely and is read on every request. `ReadCache` keeps
each value for `ttl` seconds, and the requests that miss together read it once (`SingleFlight`).

A change made through this process is seen at once: `forget(key)` or `clear()` after it, and a
read already running when it came is neither kept nor joined. A change made through another
process (the CLI, another API process) is seen within `ttl` seconds.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from functools import partial
from typing import Generic, TypeVar

from smsrelay.services.single_flight import SingleFlight

Key = TypeVar("Key", bound=Hashable)
Value = TypeVar("Value")


@dataclass
class ReadCache(Generic[Key, Value]):
    """`get(key, read)`: what `read()` gave at most `ttl` seconds ago (counted from the read)."""

    ttl: float
    clock: Callable[[], float] = time.monotonic
    max_entries: int = 10_000
    _entries: dict[Key, tuple[float, Value]] = field(default_factory=dict)
    _flights: SingleFlight[Key, Value] = field(default_factory=SingleFlight)
    _generation: int = 0  # moved on by every change: a read begun before it is not kept

    async def get(self, key: Key, read: Callable[[], Awaitable[Value]]) -> Value:
        found = self._entries.get(key)
        if found is not None and self.clock() - found[0] < self.ttl:
            return found[1]
        asked = partial(self._read, key, read, self.clock(), self._generation)
        return await self._flights.run(key, asked)

    async def _read(
        self, key: Key, read: Callable[[], Awaitable[Value]], read_at: float, generation: int
    ) -> Value:
        value = await read()  # an error is not kept: the next caller reads again
        if generation == self._generation:
            if len(self._entries) >= self.max_entries:
                self._entries.clear()
            self._entries[key] = (read_at, value)
        return value

    def forget(self, key: Key) -> None:
        """Read `key` again on its next use (it just changed here)."""
        self._generation += 1
        self._entries.pop(key, None)
        self._flights.forget(key)

    def clear(self) -> None:
        """Read everything again (something changed here that any entry may hold)."""
        self._generation += 1
        self._entries.clear()
        self._flights = SingleFlight()
