"""Sender pacing for the dispatcher: which claimed messages may go now, when, and which wait.

Each message is paced on its effective sender — its `senderId`, else its provider's default
sender — keyed by (provider, sender). Its rate is the tenant's override for that sender, else
the deployment's (`SMSRELAY_SENDER_THROUGHPUT`), else the kind table (`domain/throughput.py`)
when the provider is a carrier; the built-in simulator is not paced unless a rate is set.
Bookings go through a shared store (Redis, else the database), so the rate holds across all
worker processes, and each send's write moment goes back to it (`write_reports.py`), so the
bookings a second later are held to when requests really left; see `domain/reservations.py`
for the arithmetic and docs/pacing.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Protocol

from sqlalchemy.engine import RowMapping

from smsrelay.dispatch.buckets import Buckets
from smsrelay.dispatch.write_reports import WriteReports
from smsrelay.domain import throughput
from smsrelay.domain.reservations import Booking, Terms, Written
from smsrelay.logs import get_logger
from smsrelay.providers.http_support import Writes, noting_writes
from smsrelay.store.database import Database
from smsrelay.store.outbox import MessageEventNote, OutboxRepository
from smsrelay.store.pacing import SenderThroughputRepository

log = get_logger("smsrelay.pacing")

# When the shared pacing state cannot be reached, the round's paced messages wait this long.
UNAVAILABLE_RETRY_SECONDS = 5.0
# A send that misses its slot books a new one in process this many times before it is released.
MAX_REBOOKINGS = 3


@dataclass(frozen=True, slots=True)
class ProviderSenders:
    """What pacing needs to know of one provider: its default sender, and if it is a carrier."""

    default_sender: str | None
    paced_by_default: bool


@dataclass(frozen=True, slots=True)
class PacingConfig:
    """`tolerance_seconds`: how late after its slot a send's request may be written; a send
    is let go up to half of it late (the other half is for the way to the socket), and until
    its worker reports when it was written, a booking counts as written that late. A send
    later still is not sent: its slot is wasted, and it books another. `guard_seconds`
    lengthens the window (a 1 s budget spent over 1 s + guard), a margin for the requests'
    trip to the provider, paid in budget; none by default. `horizon_seconds`: how far ahead a
    worker books; messages due later are put back until their turn. Small enough that the
    moments of the sends a second before a booking are known when it is made (horizon + lead
    + report well under a second). `trace`: log each paced send's slot and write moment
    (`pacing.sent`) and each booking round (`pacing.booked`)."""

    providers: Mapping[str, ProviderSenders] = field(default_factory=dict)
    overrides: Mapping[str, int] = field(default_factory=dict)
    guard_seconds: float = 0.0
    tolerance_seconds: float = 0.2
    horizon_seconds: float = 0.5
    tenant_cache_seconds: float = 5.0
    trace: bool = False


@dataclass(frozen=True, slots=True)
class Turn:
    """The slot a send goes in: `start` in seconds since the epoch, None when not paced."""

    start: float | None


@dataclass(frozen=True, slots=True)
class Plan:
    """Messages to send (each with its start time, None when not paced) and to put back."""

    send: list[tuple[RowMapping, float | None]]
    later: list[tuple[RowMapping, float, str]]


class Pacer(Protocol):
    async def plan(self, rows: Sequence[RowMapping]) -> Plan: ...

    async def wait_turn(self, row: RowMapping, start: float | None) -> Turn | None: ...

    def on_time(self, turn: Turn) -> bool: ...

    def sending(self, row: RowMapping, turn: Turn) -> contextlib.AbstractContextManager[None]:
        """Around the provider call of a send in `turn`: notes when its request is written."""
        ...

    async def close(self) -> None: ...


class NoPacing:
    """Every message may go at once (tests that build a dispatcher without pacing)."""

    async def plan(self, rows: Sequence[RowMapping]) -> Plan:
        return Plan([(row, None) for row in rows], [])

    async def wait_turn(self, row: RowMapping, start: float | None) -> Turn | None:
        return Turn(None)

    def on_time(self, turn: Turn) -> bool:
        return True

    def sending(self, row: RowMapping, turn: Turn) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()

    async def close(self) -> None:
        return None


@dataclass(frozen=True, slots=True)
class _Paced:
    key: str
    terms: Terms


class SenderPacer:
    """Books claimed messages against their senders' shared budgets; see the module docstring."""

    def __init__(
        self,
        db: Database,
        buckets: Buckets,
        config: PacingConfig,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.db = db
        self.buckets = buckets
        self.config = config
        self.clock = clock
        self.sleep = sleep
        self._tenant_rates: dict[tuple[str, str], int] = {}
        self._tenant_rates_until = 0.0
        # Bookings start this far after they are asked for: twice the recent time a round's
        # bookings took, so a slot "now" is not already past when the send is started.
        self._lead = 0.0
        # Sends that missed their slots, per sender, waiting for one booking between them.
        self._rebooks: dict[_Paced, list[tuple[int, asyncio.Future[float | None]]]] = {}
        self._rebooking: set[asyncio.Task[None]] = set()
        # When this worker's sends were written, not yet in the shared state.
        self._reports = WriteReports(lambda: self.buckets, clock)

    async def plan(self, rows: Sequence[RowMapping]) -> Plan:
        """Book each paced sender's messages in claim order; unpaced ones go at once."""
        if not rows:
            return Plan([], [])
        await self._refresh_tenant_rates()
        groups: dict[_Paced, list[RowMapping]] = defaultdict(list)
        starts: dict[str, float | None] = {}
        later: list[tuple[RowMapping, float, str]] = []
        for row in rows:
            paced = self._paced(row)
            if paced is None:
                starts[row["id"]] = None
            else:
                groups[paced].append(row)
        asked = self.clock()
        for paced, members in groups.items():
            await self._book(paced, members, asked + self._lead, starts, later)
        if groups:
            self._learn_lead(self.clock() - asked)
        send = [(row, starts[row["id"]]) for row in rows if row["id"] in starts]
        return Plan(send, later)

    async def wait_turn(self, row: RowMapping, start: float | None) -> Turn | None:
        """Sleep until `start`. A send woken too late for its slot books a new one in process
        (the missed slot is wasted, never reused) and waits again, so the message is neither
        sent off its slot nor sent back through the outbox; None (release the message) when no
        slot came within twice the horizon, or after MAX_REBOOKINGS misses in a row."""
        if start is None:
            return Turn(None)
        for _ in range(MAX_REBOOKINGS + 1):
            delay = start - self.clock()
            if delay > 0:
                await self.sleep(delay)
            turn = Turn(start)
            if self.on_time(turn):
                return turn
            paced = self._paced(row)
            if paced is not None:  # nothing goes in the missed slot: it leaves every window
                self._reports.add(paced.key, paced.terms, start, None)
            rebooked = await self._rebook(row)
            if rebooked is None:
                return None
            start = rebooked
        return None

    def on_time(self, turn: Turn) -> bool:
        """True while a send booked for `turn` may still begin: at most half the tolerance
        late (the other half is for the way to the socket). A miss is logged."""
        if turn.start is None:
            return True
        late = self.clock() - turn.start
        if late <= self.config.tolerance_seconds / 2:
            return True
        log.info("pacing.slot_missed", late_ms=round(late * 1000))
        return False

    @contextlib.contextmanager
    def sending(self, row: RowMapping, turn: Turn) -> Iterator[None]:
        """Around the provider call: notes the moment the request is written (else the moment
        it was let go) and reports it to the sender's shared state, where the bookings of a
        second later are held to it. A request that would be written more than the tolerance
        after its slot (a stall on the way to the socket) is refused before it leaves: the
        bookings count on none being later, so it fails as never sent and its slot is freed.
        With `trace`, logs it (`pacing.sent`) beside its slot."""
        paced = self._paced(row) if turn.start is not None else None
        if paced is None or turn.start is None:
            yield
            return
        gate, real_gate = self.clock(), time.time()
        writes = Writes(deadline=real_gate + turn.start + self.config.tolerance_seconds - gate)
        try:
            with noting_writes(writes):
                yield
        finally:
            if writes.refused:
                log.info("pacing.write_refused", outbox_id=row["id"], slot=turn.start)
                self._reports.add(paced.key, paced.terms, turn.start, None)
            else:
                # The write's delay after the gate (real clock), on the pacer's clock.
                moments = writes.moments
                written = gate + max(0.0, moments[0] - real_gate) if moments else gate
                self._reports.add(paced.key, paced.terms, turn.start, written)
                if self.config.trace:
                    log.info("pacing.sent", outbox_id=row["id"], slot=turn.start, written=written)

    def rate_for(self, tenant_id: str, provider: str, sender: str) -> int | None:
        """Segments per second for `sender` at `provider` for this tenant; None: not paced."""
        own = self._tenant_rates.get((tenant_id, sender))
        if own is not None:
            return own
        if sender in self.config.overrides:
            return self.config.overrides[sender]
        senders = self.config.providers.get(provider)
        if senders is None or not senders.paced_by_default:
            return None
        return throughput.default_throughput(sender).segments_per_second

    def effective_sender(self, row: RowMapping) -> str:
        """The message's own sender, else its provider's default (empty when unknown)."""
        if row["sender_id"]:
            return str(row["sender_id"])
        senders = self.config.providers.get(row["provider"])
        return (senders.default_sender if senders else None) or ""

    def _paced(self, row: RowMapping) -> _Paced | None:
        sender = self.effective_sender(row)
        rate = self.rate_for(row["tenant_id"], row["provider"], sender)
        if rate is None:
            return None
        terms = Terms(
            rate,
            window=1.0 + self.config.guard_seconds,
            horizon=self.config.horizon_seconds,
            tolerance=self.config.tolerance_seconds,
        )
        return _Paced(f"{row['provider']}|{sender}", terms)

    async def _book(
        self,
        paced: _Paced,
        rows: list[RowMapping],
        now: float,
        starts: dict[str, float | None],
        later: list[tuple[RowMapping, float, str]],
    ) -> None:
        costs = [max(1, int(row["segments"])) for row in rows]
        written = self._reports.take(paced.key)
        try:
            bookings = await self.buckets.book(paced.key, now, costs, paced.terms, written)
        except Exception as exc:  # Redis or the database away: hold the sender, never overrun
            log.error("pacing.unavailable", error=type(exc).__name__)
            retry = now + UNAVAILABLE_RETRY_SECONDS
            later.extend((row, retry, "pacing state unavailable") for row in rows)
            return
        self._trace_booking(now, bookings, written)
        for row, booking in zip(rows, bookings, strict=True):
            self._place(row, booking, now, starts, later)

    async def _rebook(self, row: RowMapping) -> float | None:
        """A new slot for one message whose slot passed, within twice the horizon (a busy
        sender is booked a whole horizon ahead, and the message has already waited its turn
        once); None when there is none or the shared state cannot be reached. The sends of
        one sender that a stall made miss together are booked again in one round trip (one
        each would pile up on the shared state and miss again while they wait for it)."""
        paced = self._paced(row)
        if paced is None:
            return None
        answer: asyncio.Future[float | None] = asyncio.get_running_loop().create_future()
        queued = self._rebooks.setdefault(paced, [])
        queued.append((max(1, int(row["segments"])), answer))
        if len(queued) == 1:
            task = asyncio.ensure_future(self._book_again(paced))
            self._rebooking.add(task)
            task.add_done_callback(self._rebooking.discard)
        return await answer

    async def _book_again(self, paced: _Paced) -> None:
        await asyncio.sleep(0)  # the other sends woken late by the same stall join first
        queued = self._rebooks.pop(paced)
        asked = self.clock()
        terms = replace(paced.terms, horizon=2 * paced.terms.horizon)
        costs = [cost for cost, _ in queued]
        written = self._reports.take(paced.key)
        try:
            bookings = await self.buckets.book(paced.key, asked + self._lead, costs, terms, written)
        except Exception as exc:  # Redis or the database away: release, never overrun
            log.error("pacing.unavailable", error=type(exc).__name__)
            bookings = [Booking(None)] * len(queued)
        else:
            self._learn_lead(self.clock() - asked)
        for (_, answer), booking in zip(queued, bookings, strict=True):
            if not answer.done():  # its send may have been cancelled (shutdown)
                answer.set_result(booking.start)

    def _trace_booking(self, now: float, bookings: list[Booking], written: Written) -> None:
        if self.config.trace:
            booked = [b.start for b in bookings if b.start is not None]
            log.info(
                "pacing.booked",
                at=self.clock(),
                now=now,
                starts=booked,
                deferred=len(bookings) - len(booked),
                reported=len(written),
            )

    def _learn_lead(self, round_trip: float) -> None:
        """Rise at once with a slow round trip, decay slowly; never past half the horizon."""
        lead = max(2 * round_trip, 0.9 * self._lead)
        self._lead = min(lead, self.config.horizon_seconds / 2)

    def _place(
        self,
        row: RowMapping,
        booking: Booking,
        now: float,
        starts: dict[str, float | None],
        later: list[tuple[RowMapping, float, str]],
    ) -> None:
        if booking.start is not None:
            starts[row["id"]] = booking.start
            return
        assert booking.retry_at is not None
        # Claimed again a little before its projected turn, so the booking is then near.
        retry = max(now, booking.retry_at - self.config.horizon_seconds / 2)
        later.append((row, retry, "sender throughput"))

    async def _refresh_tenant_rates(self) -> None:
        if self.clock() < self._tenant_rates_until:
            return
        async with self.db.reading() as connection:
            rows = await SenderThroughputRepository(connection).all()
        self._tenant_rates = {
            (row["tenant_id"], row["sender"]): int(row["segments_per_second"]) for row in rows
        }
        self._tenant_rates_until = self.clock() + self.config.tenant_cache_seconds

    async def close(self) -> None:
        """Report what was written (another worker may go on with the sender), then close."""
        await self._reports.flush()
        await self.buckets.close()


async def put_back(
    db: Database, later: Sequence[tuple[RowMapping, float, str]], worker: str, now: datetime
) -> None:
    """Return messages that cannot go soon to `pending`, due again at their turn (not an
    attempt: the claim's attempt count is given back)."""
    if not later:
        return
    async with db.transaction() as connection:
        outbox = OutboxRepository(connection)
        for row, retry, reason in later:
            retry_at = datetime.fromtimestamp(retry, UTC)
            note = MessageEventNote(
                "pacing_deferred", {"reason": reason, "retryAt": retry_at.isoformat()}
            )
            await outbox.release_claim(row, worker, now, max(now, retry_at), note)


def horizon_for(lease_seconds: float, wanted: float) -> float:
    """How far ahead a worker may book: never past a quarter lease, so every booked send
    starts well inside the first half of its lease (the dispatcher's rule)."""
    return max(0.0, min(wanted, lease_seconds / 4))


__all__ = [
    "NoPacing",
    "Pacer",
    "PacingConfig",
    "Plan",
    "ProviderSenders",
    "SenderPacer",
    "Turn",
    "horizon_for",
    "put_back",
]
