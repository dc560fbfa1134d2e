"""When this worker's paced requests were written, on their way to the senders' shared state.

Until a send's moment arrives there, the bookings count it as written as late as the tolerance
(docs/pacing.md): every report that comes after the booking a second later costs budget.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from smsrelay.dispatch.buckets import Buckets
from smsrelay.domain.reservations import Terms, Written
from smsrelay.logs import get_logger

log = get_logger("smsrelay.pacing")

# When the moments are sent on their own, at the latest (a booking for the sender takes them
# along sooner). They must arrive before the bookings a second after them are made, which is
# at least 1 s - horizon - lead later.
REPORT_SECONDS = 0.1


class WriteReports:
    """(slot, moment) pairs per sender key, the moment None for a slot that was missed; they go
    with this worker's next booking for the sender (`take`), or on their own within `delay`."""

    def __init__(
        self,
        buckets: Callable[[], Buckets],
        clock: Callable[[], float],
        delay: float = REPORT_SECONDS,
    ) -> None:
        self._buckets = buckets
        self._clock = clock
        self._delay = delay
        self._pending: dict[str, tuple[Terms, list[tuple[float, float | None]]]] = {}
        self._sending: dict[str, asyncio.Task[None]] = {}

    def add(self, key: str, terms: Terms, slot: float, moment: float | None) -> None:
        self._pending.setdefault(key, (terms, []))[1].append((slot, moment))
        if key not in self._sending:
            self._sending[key] = asyncio.ensure_future(self._send_soon(key))

    def take(self, key: str) -> Written:
        """The reports for `key` not sent yet, for a booking to take along."""
        entry = self._pending.pop(key, None)
        return entry[1] if entry else []

    async def flush(self) -> None:
        """Send every report now (on shutdown: another worker may go on with the sender)."""
        for task in list(self._sending.values()):
            task.cancel()
        self._sending.clear()
        for key in list(self._pending):
            await self._send(key)

    async def _send_soon(self, key: str) -> None:
        await asyncio.sleep(self._delay)
        self._sending.pop(key, None)
        await self._send(key)

    async def _send(self, key: str) -> None:
        entry = self._pending.pop(key, None)
        if not entry:
            return
        terms, written = entry
        try:
            await self._buckets().book(key, self._clock(), [], terms, written)
        except Exception as exc:  # the bookings stay counted at their latest: budget, not rate
            log.warning("pacing.report_failed", error=type(exc).__name__)
