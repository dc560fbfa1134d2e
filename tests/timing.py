"""Clocks and pauses tests use to put a read at a chosen moment."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any


class Ticks:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class PausedFirstCall:
    """Wraps an async function: its first call pauses after it has run, until `release()`.

    `await paused.reached.wait()` waits for that moment, so a test can change something while
    a read holds an old answer.
    """

    def __init__(self, function: Callable[..., Awaitable[Any]]) -> None:
        self.function = function
        self.reached, self._released = asyncio.Event(), asyncio.Event()

    async def __call__(self, *args: Any, **kwargs: Any) -> Any:
        result = await self.function(*args, **kwargs)
        if not self._released.is_set():
            self.reached.set()
            await self._released.wait()
        return result

    def release(self) -> None:
        self._released.set()
