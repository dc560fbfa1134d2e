"""The background loop beside the dispatcher: settle finished messages, deliver due alerts."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime

from smsrelay.logs import get_logger
from smsrelay.services.alert_delivery import AlertDelivery
from smsrelay.services.balances import settle_finished
from smsrelay.store.database import Database

log = get_logger("smsrelay.alerts")


def _utcnow() -> datetime:
    return datetime.now(UTC)


class AlertLoop:
    """Refunds and failed-SMS alerts for messages that ended, then alert deliveries, until
    `stop()`. Any number of processes may run one: rows are claimed, never shared."""

    def __init__(
        self,
        db: Database,
        delivery: AlertDelivery,
        *,
        poll_seconds: float = 1.0,
        batch_size: int = 100,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.db = db
        self.delivery = delivery
        self.poll_seconds = poll_seconds
        self.batch_size = batch_size
        self.clock = clock
        self._stopped = asyncio.Event()

    async def run_once(self) -> int:
        """One round: how many messages were settled plus how many alerts were tried."""
        settled = await settle_finished(self.db, self.clock(), self.batch_size)
        tried = await self.delivery.deliver_due(self.batch_size)
        return settled + tried

    async def run(self) -> None:
        """Loop until `stop()`; a failing round is logged and retried, never fatal."""
        log.info("alerts.loop_started")
        try:
            while not self._stopped.is_set():
                try:
                    busy = await self.run_once()
                except Exception as exc:  # a database hiccup must not end the loop
                    log.error("alerts.round_failed", error=type(exc).__name__)
                    busy = 0
                if not busy:
                    await self._idle()
        finally:
            await self.delivery.close()

    async def _idle(self) -> None:
        try:
            await asyncio.wait_for(self._stopped.wait(), timeout=self.poll_seconds)
        except TimeoutError:
            return

    def stop(self) -> None:
        self._stopped.set()
