"""Pure reservation arithmetic for one sender: when may each message start (no I/O, no clock).

A sender's state is a virtual "next free time" (`tat`, as in GCRA) plus the bookings of the
last window. Each booking of `c` segments at rate `r` starts at the later of now and `tat`,
pushed further if the window ending at its start would hold more than `r` segments, and moves
`tat` on by `c · window / r`. So in any window of `window` seconds (sliding, not aligned) the
segments that start never exceed `r` (or one message's own segments, when that is more), and
a sender with work starts `r / window` segments a second: the whole budget less the guard.

A booking further ahead than `horizon` is not made: the message is deferred instead, to a
projected time at the end of the sender's backlog (`tail`, an estimate only), so it is claimed
again about when its turn comes and not held by a worker in the meantime.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Past a window's end by this much, so float rounding never puts a start back inside it.
_TICK = 1e-6


@dataclass
class Bucket:
    """One sender's shared state; times are seconds since the epoch."""

    tat: float = 0.0
    tail: float = 0.0
    recent: list[tuple[float, int]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"tat": self.tat, "tail": self.tail, "recent": [list(b) for b in self.recent]}

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> Bucket:
        if not data:
            return cls()
        recent = [(float(at), int(cost)) for at, cost in data.get("recent", [])]
        return cls(float(data.get("tat", 0.0)), float(data.get("tail", 0.0)), recent)


@dataclass(frozen=True, slots=True)
class Booking:
    """`start` when the message may be sent now-ish; else `retry_at`, when to claim it again."""

    start: float | None
    retry_at: float | None = None

    @property
    def booked(self) -> bool:
        return self.start is not None


@dataclass(frozen=True, slots=True)
class Terms:
    """The rate and the shape of the window a sender is held to."""

    segments_per_second: int
    window: float = 1.0
    horizon: float = 1.0


def book(bucket: Bucket, now: float, costs: list[int], terms: Terms) -> list[Booking]:
    """Book each cost in order (FIFO); `bucket` is updated in place. After one deferral, the
    rest of `costs` is deferred too, so a sender's messages keep their order."""
    bookings: list[Booking] = []
    if bucket.tat <= now:  # idle: a backlog projected earlier was sent, canceled or expired
        bucket.tail = now
    for cost in costs:
        start, kept = _earliest_start(bucket, now, cost, terms)
        interval = cost * terms.window / terms.segments_per_second
        if (bookings and not bookings[-1].booked) or start - now > terms.horizon:
            projected = max(bucket.tail, start)
            bucket.tail = projected + interval
            bookings.append(Booking(None, projected))
            continue
        bucket.tat = start + interval
        bucket.recent = [*kept, (start, cost)]
        bookings.append(Booking(start))
    bucket.recent = [b for b in bucket.recent if b[0] > bucket.tat - terms.window]
    return bookings


def _earliest_start(
    bucket: Bucket, now: float, cost: int, terms: Terms
) -> tuple[float, list[tuple[float, int]]]:
    """The first time ≥ max(now, tat) at which the window ending there has room for `cost`;
    with the bookings still inside that window."""
    start = max(now, bucket.tat)
    room = max(terms.segments_per_second, cost)  # a message bigger than the budget goes alone
    kept = [b for b in bucket.recent if b[0] > start - terms.window]
    while kept and sum(c for _, c in kept) + cost > room:
        oldest, *kept = kept  # it leaves the window at oldest + window (no float round trip)
        start = max(start, oldest[0] + terms.window + _TICK)
        kept = [b for b in kept if b[0] > start - terms.window]
    return start, kept
