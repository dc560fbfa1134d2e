"""Pure reservation arithmetic for one sender: when may each message start (no I/O, no clock).

The bound is on when requests are written: in any window of `window` seconds (sliding, not
aligned) the segments written for one sender never exceed its rate (or one message's own
segments, when that is more). A booking is a slot, and until its worker reports the moment its
request was written (`confirm`), it counts as written as late as a send may be
(`slot + tolerance`: the gate lets no later send go). So every booking starts where the window
ending there, counting each earlier send at its latest possible moment, has room for it:

- a sender's bookings start no earlier than a virtual "next free time" (`tat`, as in GCRA) that
  moves on by `c · window / rate` per booking of `c` segments from the later of now and itself:
  a sender with work gets its rate as a smooth schedule, one message at a time, no burst;
- a send written `d` late takes its place in the window a second later, so the booking that
  would fall within `window` of it moves `d` later too (and only that one: the schedule is not
  moved), which costs the budget `d` once per late send rather than a wasted slot.

Bookings never start before an earlier one, so the busiest window around a new booking is the
one that ends at it, and one pass over the bookings ordered by their latest moment finds it.

A booking further ahead than `horizon` is not made: the message is deferred instead, to a
projected time at the end of the sender's backlog (`tail`, an estimate only), so it is claimed
again about when its turn comes and not held by a worker in the meantime.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

# Past a window's end by this much, so float rounding never puts a start back inside it.
_TICK = 1e-6
# (slot, the moment its request was written, or None when it never was), as workers report them.
Written = Sequence[tuple[float, float | None]]

# (slot, segments, latest): the moment its request was written, or could still be.
Entry = tuple[float, int, float]


@dataclass
class Bucket:
    """One sender's shared state; times are seconds since the epoch."""

    tat: float = 0.0
    tail: float = 0.0
    recent: list[Entry] = field(default_factory=list)
    last: float = 0.0  # the latest start booked: bookings only move forward

    def to_json(self) -> dict[str, Any]:
        return {
            "tat": self.tat,
            "tail": self.tail,
            "last": self.last,
            "recent": [list(entry) for entry in self.recent],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> Bucket:
        if not data:
            return cls()
        recent = [_entry(raw) for raw in data.get("recent", [])]
        last = float(data.get("last", max((e[0] for e in recent), default=0.0)))
        return cls(float(data.get("tat", 0.0)), float(data.get("tail", 0.0)), recent, last)


def _entry(raw: list[Any]) -> Entry:
    """An entry as stored; one of before tolerances ([slot, segments]) was written at its slot."""
    slot, cost = float(raw[0]), int(raw[1])
    return slot, cost, float(raw[2]) if len(raw) > 2 else slot


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
    """The rate and the shape of the window a sender is held to. `tolerance`: how late after
    its slot a send's request may still be written (what an unconfirmed booking counts as)."""

    segments_per_second: int
    window: float = 1.0
    horizon: float = 1.0
    tolerance: float = 0.0


def confirm(bucket: Bucket, written: Written) -> None:
    """Record when the requests of bookings (by slot) were written, None for a booking whose
    send never went (its slot missed: it leaves every window). Unknown slots are ignored (their
    bookings are already out of every window that is still to be booked)."""
    moments = dict(written)
    if not moments:
        return
    recent: list[Entry] = []
    for slot, cost, latest in bucket.recent:
        moment = moments.get(slot, latest)
        if moment is not None:
            recent.append((slot, cost, moment))
    bucket.recent = recent


def book(
    bucket: Bucket,
    now: float,
    costs: list[int],
    terms: Terms,
    written: Written = (),
) -> list[Booking]:
    """Confirm `written` (slot, moment) pairs, then book each cost in order (FIFO); `bucket` is
    updated in place. After one deferral, the rest of `costs` is deferred too, so a sender's
    messages keep their order."""
    confirm(bucket, written)
    bookings: list[Booking] = []
    if max(bucket.tat, bucket.last) <= now:  # idle: a projected backlog was sent or dropped
        bucket.tail = now
    kept = sorted(bucket.recent, key=_latest)
    for cost in costs:
        start, inside = _earliest_start(bucket, kept, now, cost, terms)
        interval = cost * terms.window / terms.segments_per_second
        if (bookings and not bookings[-1].booked) or start - now > terms.horizon:
            # At the end of the backlog, on the schedule as it stands (not pushed by the
            # sends still unconfirmed: by its turn they are, most of them near their slots).
            projected = max(bucket.tail, now, bucket.tat, bucket.last)
            bucket.tail = projected + interval
            bookings.append(Booking(None, projected))
            continue
        bucket.tat = max(bucket.tat, now) + interval
        bucket.last = start
        kept = inside  # what left the window ending at `start` counts for no later booking
        bisect.insort(kept, (start, cost, start + terms.tolerance), key=_latest)
        bookings.append(Booking(start))
    bucket.recent = [e for e in kept if e[2] > bucket.last - terms.window]
    return bookings


def _earliest_start(
    bucket: Bucket, kept: list[Entry], now: float, cost: int, terms: Terms
) -> tuple[float, list[Entry]]:
    """The first time ≥ now, ≥ tat and after the last booking at which the window ending there
    has room for `cost`; with the entries (ordered by latest moment) still inside that window."""
    # Half an emission interval after the last booking at least: a schedule pushed back by a
    # late send catches up at twice the rate at most, never in a burst.
    gap = max(_TICK, cost * terms.window / terms.segments_per_second / 2)
    after_last = bucket.last + gap if bucket.recent else bucket.last
    start = max(now, bucket.tat, after_last)
    room = max(terms.segments_per_second, cost)  # a message bigger than the budget goes alone
    first = 0
    while first < len(kept) and kept[first][2] <= start - terms.window:
        first += 1
    total = sum(entry[1] for entry in kept[first:])
    while first < len(kept) and total + cost > room:
        # The earliest to leave: once it has, the window ending at `start` holds one less.
        start = max(start, kept[first][2] + terms.window + _TICK)
        while first < len(kept) and kept[first][2] <= start - terms.window:
            total -= kept[first][1]
            first += 1
    return start, kept[first:]


def _latest(entry: Entry) -> float:
    return entry[2]
