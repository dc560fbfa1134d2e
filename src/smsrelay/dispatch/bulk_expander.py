"""The bulk expander: a loop that leases accepted bulks and writes their outbox rows in chunks.

It runs beside the dispatcher in `serve` and `worker` processes. A bulk is leased to one
expander at a time; the lease is renewed with each chunk, so after a crash another process
takes the bulk over once the lease runs out and continues from the stored cursor.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.engine import RowMapping

from smsrelay.dispatch.dispatcher import worker_name
from smsrelay.logs import get_logger
from smsrelay.services.bulk_expansion import Chunk, Debit, Planner, expand_chunk
from smsrelay.services.errors import ServiceError
from smsrelay.services.submit import SubmitPolicy
from smsrelay.store.bulks import BulkRepository
from smsrelay.store.database import Database

log = get_logger("smsrelay.bulk")

PolicyFor = Callable[[str], Awaitable[SubmitPolicy]]  # tenant id -> its submit policy


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class ExpanderConfig:
    chunk_size: int = 1000
    lease_seconds: float = 60.0
    poll_seconds: float = 1.0
    retry_seconds: float = 30.0  # a bulk whose chunk failed (e.g. no balance) waits this long


class BulkExpander:
    """Leases open bulks and expands them chunk by chunk until none is left."""

    def __init__(
        self,
        db: Database,
        policy_for: PolicyFor,
        *,
        config: ExpanderConfig | None = None,
        name: str | None = None,
        clock: Callable[[], datetime] = utcnow,
        debit: Debit | None = None,
        on_written: Callable[[], None] | None = None,
    ) -> None:
        self.db = db
        self.policy_for = policy_for
        self.config = config or ExpanderConfig()
        self.name = name or f"bulk-{worker_name()}"
        self.clock = clock
        self.debit = debit
        self.on_written = on_written
        self._wake = asyncio.Event()
        self._stopping = False
        self._resting: dict[str, datetime] = {}  # bulks whose last chunk failed, until when

    def wake(self) -> None:
        self._wake.set()

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    async def run(self) -> None:
        """Expand until stopped; a failure is logged and the loop goes on."""
        log.info("bulk.expander_started", worker=self.name)
        while not self._stopping:
            try:
                written = await self.run_once()
            except Exception as exc:  # the loop must outlive one bad bulk: log, go on
                log.error("bulk.expander_failed", worker=self.name, error=type(exc).__name__)
                written = 0
            if not written:
                await self._idle()

    async def _idle(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=self.config.poll_seconds)
        self._wake.clear()

    async def run_once(self, max_chunks: int | None = None) -> int:
        """Lease one open bulk and expand it (up to `max_chunks` chunks); rows written."""
        bulk = await self._claim()
        if bulk is None:
            return 0
        return await self.expand(dict(bulk), max_chunks)

    async def _claim(self) -> RowMapping | None:
        now = self.clock()
        self._resting = {k: v for k, v in self._resting.items() if v > now}
        lease = timedelta(seconds=self.config.lease_seconds)
        async with self.db.transaction() as connection:
            return await BulkRepository(connection).claim(
                self.name, now, lease, list(self._resting)
            )

    async def expand(self, bulk: Mapping[str, Any], max_chunks: int | None = None) -> int:
        """Write `bulk`'s remaining recipients chunk by chunk while this worker holds it."""
        planner = Planner(await self.policy_for(bulk["tenant_id"]), bulk)
        cursor, written, chunks = bulk["expanded_count"], 0, 0
        while not self._stopping and (max_chunks is None or chunks < max_chunks):
            try:
                chunk = await self._chunk(planner, cursor)
            except ServiceError as exc:
                await self._rest(bulk, exc)
                break
            written, cursor, chunks = written + chunk.written, cursor + chunk.written, chunks + 1
            if chunk.written and self.on_written is not None:
                self.on_written()
            if chunk.done or chunk.fenced_out:
                log.info("bulk.expanded", bulkId=bulk["id"], upTo=cursor, done=chunk.done)
                break
        return written

    async def _chunk(self, planner: Planner, cursor: int) -> Chunk:
        lease = timedelta(seconds=self.config.lease_seconds)
        async with self.db.transaction() as connection:
            return await expand_chunk(
                connection,
                planner,
                self.name,
                cursor,
                size=self.config.chunk_size,
                lease=lease,
                now=self.clock(),
                debit=self.debit,
            )

    async def _rest(self, bulk: Mapping[str, Any], exc: ServiceError) -> None:
        """A chunk the rules refuse as a whole (no balance): leave the bulk, retry it later."""
        log.warning("bulk.expansion_paused", bulkId=bulk["id"], reason=exc.code)
        self._resting[bulk["id"]] = self.clock() + timedelta(seconds=self.config.retry_seconds)
        async with self.db.transaction() as connection:
            await BulkRepository(connection).release(bulk["id"], self.name)
