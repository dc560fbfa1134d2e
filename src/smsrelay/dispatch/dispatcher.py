"""The claim loop: lease due messages, send each once, record the outcome, reconcile the unknown."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import insert
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from smsrelay import metrics
from smsrelay.dispatch.acceptances import Acceptance, AcceptanceWriter
from smsrelay.dispatch.pacing import NoPacing, Pacer, put_back
from smsrelay.dispatch.retry import RetryPolicy
from smsrelay.domain.ids import new_id
from smsrelay.domain.status import Status, is_terminal
from smsrelay.logs import get_logger
from smsrelay.providers.base import (
    Outcome,
    ProviderError,
    ProviderMessage,
    SendRequest,
    SendResult,
)
from smsrelay.services.consent import (
    Decision,
    enforce_at_dispatch_batch,
    record_dispatch_decision,
    record_provider_opt_out,
)
from smsrelay.services.delivery import (
    StatusUpdate,
    apply_parked_updates,
    apply_status_update,
    error_columns,
    result_event_data,
)
from smsrelay.services.prices import record_provider_price
from smsrelay.services.provider_pool import ProviderPool
from smsrelay.store.claims import claim_due, claim_expired, claim_unconfirmed, claim_unpriced
from smsrelay.store.database import Database
from smsrelay.store.outbox import MessageEventNote, OutboxRepository, event_row
from smsrelay.store.tables import message_events

log = get_logger("smsrelay.dispatch")


# A send that waited longer than this for its pacing turn (or was booked again) has its consent
# checked again: a STOP waits for the sends in flight only about a provider timeout.
CONSENT_RECHECK_SECONDS = 1.0


Claimed = tuple[list[RowMapping], list[RowMapping]]  # (leases taken over, messages claimed)


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class DispatchConfig:
    batch_size: int = 50
    concurrency: int = 32
    lease_seconds: float = 60.0
    reconcile_after_seconds: float = 5.0
    poll_seconds: float = 0.2
    refill_wait_seconds: float = 0.02
    acceptance_linger_seconds: float = 0.02
    status_callback_url: str | None = None
    status_check_after_seconds: float = 600.0
    unresolved_after_seconds: float = 3600.0
    status_check_give_up_seconds: float = 72 * 3600.0


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{new_id('w')[-6:]}"


class Dispatcher:
    """Claims due messages and sends them through their provider, at most `concurrency` at once."""

    def __init__(
        self,
        db: Database,
        providers: ProviderPool,
        *,
        config: DispatchConfig,
        policy: RetryPolicy | None = None,
        clock: Callable[[], datetime] = utcnow,
        name: str | None = None,
        pacer: Pacer | None = None,
    ) -> None:
        self.db = db
        self.providers = providers
        self.config = config
        self.policy = policy or RetryPolicy()
        self.clock = clock
        self.name = name or worker_name()
        self._wake = asyncio.Event()
        self._stopping = False
        self._inflight: set[asyncio.Task[None]] = set()  # sends, look-ups and recordings
        self._sending: set[asyncio.Task[None]] = set()  # those holding a send slot
        self._next_status_check = 0.0
        self.pacer: Pacer = pacer or NoPacing()
        self._acceptances = AcceptanceWriter(
            db,
            self.name,
            clock,
            _late_acceptance,
            fill=max(1, config.concurrency // 2),
            linger_seconds=config.acceptance_linger_seconds,
        )

    def wake(self) -> None:
        """Ask the loop to look for work now (called after a submit in the same process)."""
        self._wake.set()

    async def run(self) -> None:
        """Loop until `stop()`; a failing round is logged and retried, never fatal."""
        log.info("dispatch.started", worker=self.name, concurrency=self.config.concurrency)
        while not self._stopping:
            try:
                found = await self.run_once()
            except Exception as exc:  # a database hiccup must not kill the worker
                log.error("dispatch.round_failed", worker=self.name, error=type(exc).__name__)
                found = 0
            if not found:
                await self._idle()
        await self.drain()

    async def _idle(self) -> None:
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), self.config.poll_seconds)

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    async def drain(self) -> None:
        """Wait for every send in flight to be recorded (a finished send starts its record)."""
        while self._inflight:
            await asyncio.gather(*self._inflight, return_exceptions=True)

    def free_slots(self) -> int:
        """How many messages the next round may claim.

        A slot is held from the claim until the provider answers; the send's task then records
        the answer holding none (acceptances are written in batches), so a slot is free again
        while its result waits for the batch. The results being recorded are capped at
        `concurrency` more, so claimed-but-unrecorded messages never exceed twice that.
        """
        sends = self.config.concurrency - len(self._sending)
        return min(sends, 2 * self.config.concurrency - len(self._inflight))

    async def run_once(self) -> int:
        """One round: claim what fits in the free slots and start it; returns how many."""
        free = self.free_slots()
        if 0 < free < min(self.config.batch_size, self.config.concurrency) and self._inflight:
            await self._let_inflight_finish()
            free = self.free_slots()
        if free <= 0:
            await asyncio.wait(self._inflight, return_when=asyncio.FIRST_COMPLETED)
            return 1
        limit = min(free, self.config.batch_size)
        now = self.clock()
        lease = timedelta(seconds=self.config.lease_seconds)

        async def claim(connection: AsyncConnection) -> Claimed:
            stale = await claim_expired(connection, self.name, now, lease, limit)
            fresh = await claim_due(connection, self.name, now, lease, limit - len(stale))
            await _record_claims(connection, fresh, now, self.name)
            return stale, fresh

        async def check(connection: AsyncConnection, claimed: Claimed) -> list[Decision]:
            return await self._consent_decisions(connection, claimed[1])

        # The consent check reads after the claim's commit (see `_consent_cleared`); on SQLite
        # both are one hand-off to the writer thread, on PostgreSQL one connection.
        (stale, fresh), decisions = await self.db.write_then_read(claim, check)
        for row in stale:
            self._start(self._reconcile(row))
        cleared = await self._set_aside_refused(fresh, decisions)
        await self.providers.prepare(cleared)  # tenants' own accounts: sends wait on no query
        plan = await self.pacer.plan(cleared)
        for row, start in plan.send:  # started first: their slots are running
            self._start(self._send(row, start))
        await put_back(self.db, plan.later, self.name, self.clock())
        await self._maybe_check_statuses()
        return len(stale) + len(fresh)

    async def _let_inflight_finish(self) -> None:
        """Wait (briefly) for the sends in flight, so a round claims a whole batch.

        A claim costs about the same for one message as for fifty: refilling each slot the
        moment it frees would be a transaction per message when the provider answers fast.
        A slow provider costs at most `refill_wait_seconds` of each slot's time. Only the
        sends: a slot is free once its provider answered, while the answer's record may wait
        for company (acceptances are written in batches); with no send left, the records.
        """
        holding = self._sending or self._inflight
        await asyncio.wait(set(holding), timeout=self.config.refill_wait_seconds)

    async def _maybe_check_statuses(self) -> None:
        loop_time = asyncio.get_running_loop().time()
        if loop_time < self._next_status_check:
            return
        self._next_status_check = loop_time + min(60.0, self.config.status_check_after_seconds)
        await self.check_unconfirmed()
        await self.check_prices()

    async def check_unconfirmed(self) -> int:
        """Ask the provider about `sent` messages that never got a final status."""
        now = self.clock()
        async with self.db.transaction() as connection:
            rows = await claim_unconfirmed(
                connection,
                now,
                timedelta(seconds=self.config.status_check_after_seconds),
                timedelta(seconds=self.config.status_check_give_up_seconds),
                self.config.batch_size,
            )
        for row in rows:
            await self._check_status(row)
        return len(rows)

    async def check_prices(self) -> int:
        """Ask the provider what it billed for final messages whose price is not recorded yet."""
        now = self.clock()
        askable = self.providers.askable()
        async with self.db.transaction() as connection:
            rows = await claim_unpriced(
                connection,
                now,
                timedelta(seconds=self.config.status_check_after_seconds),
                timedelta(seconds=self.config.status_check_give_up_seconds),
                self.config.batch_size,
                askable,
            )
        for row in rows:
            await self._fetch(row)
        return len(rows)

    async def _fetch(self, row: RowMapping) -> ProviderMessage | None:
        """The provider's record of a message, its billed price stored; None when unreachable."""
        provider = await self.providers.for_message(row)
        try:
            found = await provider.fetch(row["provider_message_id"])
        except Exception as exc:  # unreachable provider: the next round asks again
            log.warning(
                "dispatch.status_check_failed", outbox_id=row["id"], error=type(exc).__name__
            )
            return None
        if found is not None and found.price is not None:
            await record_provider_price(self.db, row["id"], found.price, found.price_unit)
        return found

    async def _check_status(self, row: RowMapping) -> None:
        found = await self._fetch(row)
        if found is None or not is_terminal(Status(found.status)):
            return
        update = StatusUpdate(
            provider_message_id=found.provider_message_id,
            status=Status(found.status),
            provider_status=f"fetched:{found.status}",
            dedupe_key=f"status-check:{found.provider_message_id}:{found.status}",
            received_at=self.clock(),
            outbox_id=row["id"],
            error=found.error,
        )
        await apply_status_update(self.db, update)

    def _start(self, job: Any, *, holds_slot: bool = True) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(job)
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)
        if holds_slot:
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    async def process_all(self, within: float = 30.0) -> None:
        """Run rounds until nothing is due (for tests and one-shot CLI use)."""
        async with asyncio.timeout(within):
            while await self.run_once():
                await self.drain()
            await self.drain()

    async def _send(self, row: RowMapping, start: float | None = None) -> None:
        waited_from = asyncio.get_running_loop().time()
        turn = await self.pacer.wait_turn(row, start)  # a missed slot is booked again in process
        if turn is None:  # missed 3 times, or no new slot within twice the horizon
            await self._release(row, "missed its pacing slot")
            return
        waited = asyncio.get_running_loop().time() - waited_from
        if (turn.start != start or waited > CONSENT_RECHECK_SECONDS) and not (
            await self._consent_cleared([row])
        ):
            return  # a STOP that came while it waited for its turn: its drain may be over
        if row["expires_at"] is not None and self.clock() >= row["expires_at"]:
            await self._finish(row, Status.EXPIRED, "expired", {"reason": "validity period ended"})
            return
        if not self._lease_fresh(row):
            await self._release(row)
            return
        provider = await self.providers.for_send(row, self.name)
        request = self._request(row)
        if not self.pacer.on_time(turn):  # the slot passed while getting ready
            await self._release(row, "missed its pacing slot")
            return
        started = asyncio.get_running_loop().time()
        try:
            with self.pacer.sending(row, turn):  # pacing notes when the request is written
                result = await provider.send(request)
        except Exception as exc:  # an adapter bug: the request may have gone out
            log.error("dispatch.provider_crashed", outbox_id=row["id"], error=type(exc).__name__)
            result = SendResult(Outcome.AMBIGUOUS, error=ProviderError(message=type(exc).__name__))
        elapsed = asyncio.get_running_loop().time() - started
        metrics.SEND_SECONDS.labels(row["provider"]).observe(elapsed)
        metrics.SEND_ATTEMPTS.labels(row["provider"], result.outcome.value).inc()
        # The slot is free once the provider answered; recording the answer goes on in this
        # task (still in flight, so `drain` waits for it), with no slot held.
        self._sending.discard(asyncio.current_task())
        await self.record_result(row, result)

    def _lease_fresh(self, row: RowMapping) -> bool:
        """Send only in the first half of the lease, so the request is done before it ends.

        A worker that is slow to get here (a loaded machine, a long pause) must not send on a
        lease another worker may be about to take over: that worker would find no record at
        the provider and send too.
        """
        half = timedelta(seconds=self.config.lease_seconds / 2)
        return bool(self.clock() < row["lease_expires_at"] - half)

    async def _release(self, row: RowMapping, reason: str = "lease too old to send safely") -> None:
        now = self.clock()
        async with self.db.transaction() as connection:
            note = MessageEventNote("claim_released", {"reason": reason})
            await OutboxRepository(connection).release_claim(row, self.name, now, now, note)

    async def _consent_cleared(self, rows: list[RowMapping]) -> list[RowMapping]:
        """Consent checked again just before sending; the refused are set aside, not sent.

        Read after the claim's commit: a STOP waits for the sends it can see `sending`, so a
        message must be visibly `sending` before its check reads the holds (inside the claim's
        transaction, a STOP committed between the check and the claim's commit would miss it
        on PostgreSQL). The check only reads, so it takes no write lock; only refused
        messages need a write.
        """
        if not rows:
            return rows
        async with self.db.reading() as connection:
            decisions = await self._consent_decisions(connection, rows)
        return await self._set_aside_refused(rows, decisions)

    async def _consent_decisions(
        self, connection: AsyncConnection, rows: list[RowMapping]
    ) -> list[Decision]:
        """Each row's consent decision now; reads only (may run on the SQLite writer thread)."""
        if not rows:
            return []
        return await enforce_at_dispatch_batch(connection, rows, self.clock())

    async def _set_aside_refused(
        self, rows: list[RowMapping], decisions: list[Decision]
    ) -> list[RowMapping]:
        """The rows allowed to go; the refused ones recorded (suppressed or deferred)."""
        refused = [(r, d) for r, d in zip(rows, decisions, strict=True) if not d.allowed]
        if not refused:
            return rows
        now = self.clock()
        async with self.db.transaction() as connection:
            for row, decision in refused:
                await record_dispatch_decision(connection, row, decision, now)
        return [row for row, decision in zip(rows, decisions, strict=True) if decision.allowed]

    def _request(self, row: RowMapping) -> SendRequest:
        callback = self.config.status_callback_url
        if callback:
            callback = f"{callback}?{urlencode({'outboxId': row['id']})}"
        validity = None
        if row["expires_at"] is not None:
            remaining = (row["expires_at"] - self.clock()).total_seconds()
            validity = max(1, int(remaining))
        return SendRequest(
            to=row["recipient"],
            body=row["body"],
            sender=row["sender_id"],
            status_callback_url=callback,
            validity_seconds=validity,
            idempotency_key=row["id"],
        )

    async def record_result(self, row: RowMapping, result: SendResult) -> None:
        """Store an attempt's outcome; the status moves only if the message is still ours."""
        handlers = {
            Outcome.ACCEPTED: self._accepted,
            Outcome.RETRYABLE: self._retry_or_fail,
            Outcome.AMBIGUOUS: self._ambiguous,
            Outcome.PERMANENT: self._failed,
            Outcome.OPTED_OUT: self._opted_out,
        }
        await handlers[result.outcome](row, result)

    async def _accepted(self, row: RowMapping, result: SendResult) -> None:
        """`sent` on our lease (else the late-acceptance rule), batched with other acceptances."""
        sid = result.provider_message_id
        accepted = Acceptance(row["id"], sid, result_event_data(result))
        parked = await self._acceptances.record(accepted)
        if parked and sid:
            await apply_parked_updates(self.db, sid)

    async def _retry_or_fail(self, row: RowMapping, result: SendResult) -> None:
        now = self.clock()
        decision = self.policy.decide(
            attempt=row["attempt_count"],
            now=now,
            expires_at=row["expires_at"],
            retry_after=result.retry_after_seconds,
        )
        if decision.retry_at is None:
            await self._failed(row, result, reason=decision.give_up_reason)
            return
        async with self.db.transaction() as connection:
            outbox = OutboxRepository(connection)
            await outbox.add_event(
                row["id"],
                "attempt_failed",
                now,
                from_status=Status.SENDING.value,
                to_status=Status.PENDING.value,
                data={**result_event_data(result), "retryAt": decision.retry_at.isoformat()},
            )
            await outbox.update_if_owned(
                row["id"],
                self.name,
                status=Status.PENDING.value,
                next_attempt_at=decision.retry_at,
                retry_count=row["retry_count"] + 1,
                updated_at=now,
                lease_owner=None,
                lease_expires_at=None,
                needs_reconcile=0,
                **error_columns(result.error),
            )

    async def _ambiguous(self, row: RowMapping, result: SendResult) -> None:
        """Maybe sent: keep it `sending` and ask the provider later instead of resending."""
        now = self.clock()
        check_at = now + timedelta(seconds=self.config.reconcile_after_seconds)
        async with self.db.transaction() as connection:
            outbox = OutboxRepository(connection)
            await outbox.add_event(
                row["id"], "attempt_ambiguous", now, data=result_event_data(result)
            )
            await outbox.update_if_owned(
                row["id"],
                self.name,
                needs_reconcile=1,
                lease_expires_at=check_at,
                updated_at=now,
                **error_columns(result.error),
            )

    async def _opted_out(self, row: RowMapping, result: SendResult) -> None:
        """The provider says the number unsubscribed (21610): fail it and suppress the number."""
        await self._failed(row, result)
        await record_provider_opt_out(
            self.db, row["tenant_id"], row["recipient"], row["id"], self.clock()
        )

    async def _failed(self, row: RowMapping, result: SendResult, reason: str | None = None) -> None:
        data = result_event_data(result)
        if reason:
            data["reason"] = reason
        await self._finish(row, Status.FAILED, "attempt_failed", data, result.error)
        error = result.error
        log.warning(
            "notifications.sms.delivery_failed",
            outboxId=row["id"],
            tenantId=row["tenant_id"],
            channel="sms",
            templateKey=row["template_key"],
            recipient=row["recipient"],
            providerErrorCode=error.code if error else None,
            providerMoreInfo=error.more_info if error else None,
            providerDetails=error.details if error else None,
        )

    async def _finish(
        self,
        row: RowMapping,
        status: Status,
        kind: str,
        data: dict[str, Any],
        error: ProviderError | None = None,
    ) -> None:
        now = self.clock()
        async with self.db.transaction() as connection:
            outbox = OutboxRepository(connection)
            moved = await outbox.update_if_owned(
                row["id"],
                self.name,
                status=status.value,
                updated_at=now,
                lease_owner=None,
                lease_expires_at=None,
                needs_reconcile=0,
                **error_columns(error),
            )
            if moved:
                await outbox.add_event(
                    row["id"],
                    kind,
                    now,
                    from_status=Status.SENDING.value,
                    to_status=status.value,
                    data=data,
                )

    async def _reconcile(self, row: RowMapping) -> None:
        """A lease ran out or an attempt was ambiguous: ask the provider before anything else."""
        provider = await self.providers.for_message(row)
        if not provider.can_look_up_messages:
            await self._await_report(row)
            return
        found = None
        try:
            if row["provider_message_id"]:
                found = await provider.fetch(row["provider_message_id"])
            elif row["last_attempt_at"] is not None:
                since = row["last_attempt_at"] - timedelta(minutes=1)
                found = await provider.find_sent(row["recipient"], row["body"], since)
        except Exception as exc:  # provider unreachable: keep the lease, try again later
            log.warning("dispatch.reconcile_failed", outbox_id=row["id"], error=type(exc).__name__)
            await self._ambiguous(row, SendResult(Outcome.AMBIGUOUS))
            return
        if found is not None:
            accepted = SendResult(Outcome.ACCEPTED, provider_message_id=found.provider_message_id)
            await self._accepted(row, accepted)
            return
        if row["needs_reconcile"] != _ASKED_ONCE:
            await self._ask_again_later(row)
            return
        await self._retry_or_fail(row, SendResult(Outcome.RETRYABLE, error=_NOT_FOUND))

    async def _ask_again_later(self, row: RowMapping) -> None:
        """Not found yet: a stalled sender's request may still be on its way. Wait one lease."""
        now = self.clock()
        async with self.db.transaction() as connection:
            outbox = OutboxRepository(connection)
            waiting = await outbox.update_if_owned(
                row["id"],
                self.name,
                needs_reconcile=_ASKED_ONCE,
                lease_expires_at=now + timedelta(seconds=self.config.lease_seconds),
                updated_at=now,
            )
            if waiting:
                await outbox.add_event(
                    row["id"],
                    "reconcile_not_found",
                    now,
                    data={"askAgainInSeconds": self.config.lease_seconds},
                )

    async def _await_report(self, row: RowMapping) -> None:
        """A provider we cannot ask: wait for its delivery report, then give up as failed."""
        waited = self.clock() - (row["last_attempt_at"] or self.clock())
        if waited.total_seconds() < self.config.unresolved_after_seconds:
            await self._ambiguous(row, SendResult(Outcome.AMBIGUOUS))
            return
        result = SendResult(Outcome.PERMANENT, error=_UNRESOLVED)
        await self._failed(row, result, reason="no delivery report; not sent again blindly")


_ASKED_ONCE = 2  # needs_reconcile: the provider was asked once and had no record

_UNRESOLVED = ProviderError(
    message="the provider never confirmed this attempt and cannot be asked; resend if needed"
)
_NOT_FOUND = ProviderError(message="provider has no record of the attempt; sending again")


async def _late_acceptance(
    outbox: OutboxRepository, message_id: str, sid: str | None, now: datetime
) -> None:
    """The provider took a send whose lease this worker had lost.

    If the message is only waiting for a retry, that retry would be a duplicate: record the
    acceptance instead. Otherwise keep the id for the record (another worker owns the send).
    """
    if sid is not None and await outbox.update_if_status(
        message_id,
        Status.PENDING,
        status=Status.SENT.value,
        provider_message_id=sid,
        sent_at=now,
        updated_at=now,
        needs_reconcile=0,
    ):
        await outbox.add_event(
            message_id,
            "late_acceptance",
            now,
            from_status=Status.PENDING.value,
            to_status=Status.SENT.value,
            data={"providerMessageId": sid},
        )
        return
    await _fill_provider_id(outbox, message_id, sid)


async def _fill_provider_id(outbox: OutboxRepository, message_id: str, sid: str | None) -> None:
    row = await outbox.get_row(message_id)
    if row is not None and sid and not row["provider_message_id"]:
        await outbox.update(message_id, provider_message_id=sid)


async def _record_claims(
    connection: Any, rows: list[RowMapping], now: datetime, worker: str
) -> None:
    if not rows:
        return
    events = [
        event_row(
            row["id"],
            "attempt_started",
            now,
            from_status=Status.PENDING.value,
            to_status=Status.SENDING.value,
            data={"attempt": row["attempt_count"], "worker": worker},
        )
        for row in rows
    ]
    await connection.execute(insert(message_events), events)
