"""Reservation arithmetic on a fake clock: no sliding window over the rate, the budget used."""

from __future__ import annotations

import random

import pytest

from smsrelay.domain.reservations import Booking, Bucket, Terms, book
from tests.windows import max_in_window


def starts_of(bookings: list[Booking], costs: list[int]) -> list[tuple[float, int]]:
    return [(b.start, c) for b, c in zip(bookings, costs, strict=True) if b.start is not None]


def test_one_segment_messages_are_spaced_at_the_rate_from_now() -> None:
    bucket = Bucket()
    bookings = book(bucket, 100.0, [1] * 5, Terms(20, window=1.0, horizon=10.0))
    assert [b.start for b in bookings] == pytest.approx([100.0, 100.05, 100.1, 100.15, 100.2])
    assert bucket.tat == pytest.approx(100.25)


def test_a_three_segment_message_at_one_per_second_blocks_the_sender_for_three_seconds() -> None:
    bookings = book(Bucket(), 0.0, [3, 1], Terms(1, window=1.0, horizon=10.0))
    assert [b.start for b in bookings] == pytest.approx([0.0, 3.0])


def test_the_window_check_holds_a_big_message_until_the_window_has_room() -> None:
    costs = [1] * 15 + [10]
    bookings = book(Bucket(), 0.0, costs, Terms(20, window=1.0, horizon=10.0))
    starts = starts_of(bookings, costs)
    assert starts[-1][0] >= 1.0  # 15 + 10 segments may not start within one second
    assert max_in_window(starts) <= 20


@pytest.mark.parametrize("seed", range(20))
def test_no_sliding_window_ever_exceeds_the_rate(seed: int) -> None:
    """Many workers booking at random moments with mixed sizes, one shared bucket."""
    rng = random.Random(seed)
    rate = rng.choice([1, 3, 10, 20, 100])
    terms = Terms(rate, window=1.0, horizon=rng.choice([0.5, 1.0, 5.0]))
    bucket, now, starts = Bucket(), 1_000.0, []
    for _ in range(300):
        now += rng.expovariate(rate / 2)
        costs = [rng.choice([1, 1, 1, 2, 3]) for _ in range(rng.randint(1, 8))]
        starts += starts_of(book(bucket, now, costs, terms), costs)
    biggest = max(c for _, c in starts)
    assert max_in_window(starts) <= max(rate, biggest)


@pytest.mark.parametrize("rate", [1, 10, 100])
def test_a_busy_sender_uses_its_whole_budget(rate: int) -> None:
    terms = Terms(rate, window=1.01, horizon=1.0)
    bucket, starts = Bucket(), []
    batch = [1] * max(1, rate // 5)
    for tick in range(30 * 10):  # a worker asking every 100 ms for 30 s, always with work
        starts += starts_of(book(bucket, tick * 0.1, batch, terms), batch)
    span = starts[-1][0] - starts[0][0] + terms.window / rate
    assert len(starts) / span == pytest.approx(rate / 1.01, rel=1e-6)
    assert max_in_window(starts) <= rate


def test_bookings_beyond_the_horizon_are_deferred_in_order_to_the_end_of_the_backlog() -> None:
    bucket = Bucket()
    terms = Terms(1, window=1.0, horizon=1.5)
    first = book(bucket, 0.0, [1, 1, 1, 1], terms)
    assert [b.start for b in first] == [0.0, 1.0, None, None]
    assert [b.retry_at for b in first[2:]] == [2.0, 3.0]
    second = book(bucket, 0.1, [1], terms)  # another worker, moments later
    assert second == [Booking(None, 4.0)]
    assert bucket.tat == 2.0  # deferrals hold no slot: nothing is wasted if they never return


def test_an_idle_sender_forgets_a_backlog_that_never_came_back() -> None:
    bucket = Bucket()
    terms = Terms(1, window=1.0, horizon=0.5)
    book(bucket, 0.0, [1] * 100, terms)  # 99 deferred, projected up to 100 s ahead
    book(bucket, 10.0, [1], terms)  # idle by now: the projection is dropped
    assert book(bucket, 10.2, [1], terms) == [Booking(None, 11.0)]


def test_a_message_bigger_than_the_budget_goes_alone() -> None:
    costs = [5, 1]
    bookings = book(Bucket(), 0.0, costs, Terms(2, window=1.0, horizon=10.0))
    assert [b.start for b in bookings] == pytest.approx([0.0, 2.5])


def test_the_state_survives_its_json_form() -> None:
    bucket = Bucket()
    book(bucket, 5.0, [1, 2], Terms(10, window=1.0, horizon=1.0))
    assert Bucket.from_json(bucket.to_json()) == bucket
    assert Bucket.from_json(None) == Bucket()


def test_a_send_written_late_moves_only_the_booking_a_second_later_by_as_much() -> None:
    bucket, terms = Bucket(), Terms(10, window=1.0, horizon=1.0, tolerance=0.2)
    first = book(bucket, 0.0, [1] * 10, terms)
    assert [b.start for b in first] == pytest.approx([n / 10 for n in range(10)])
    written = [(b.start, b.start + (0.03 if n == 0 else 0.0)) for n, b in enumerate(first)]
    second = book(bucket, 0.5, [1] * 3, terms, written)
    # [0.03, 1.03) holds the late one and nine more: the next may start at 1.03, no earlier;
    # the one after keeps its place on the schedule.
    assert [b.start for b in second] == pytest.approx([1.03, 1.1, 1.2], abs=1e-5)


def test_a_booking_not_yet_confirmed_counts_as_written_as_late_as_the_tolerance() -> None:
    bucket, terms = Bucket(), Terms(1, window=1.0, horizon=2.0, tolerance=0.2)
    assert book(bucket, 0.0, [1], terms) == [Booking(0.0)]
    assert book(bucket, 0.1, [1], terms)[0].start == pytest.approx(1.2)


def test_a_missed_slot_leaves_every_window() -> None:
    bucket, terms = Bucket(), Terms(1, window=1.0, horizon=2.0, tolerance=0.2)
    book(bucket, 0.0, [1], terms)
    assert book(bucket, 0.1, [1], terms, [(0.0, None)])[0].start == pytest.approx(1.0)


@pytest.mark.parametrize(("rate", "seed"), [(r, s) for r in (1, 3, 10, 100) for s in range(5)])
def test_late_writes_keep_every_second_within_the_rate_and_use_the_budget(
    rate: int, seed: int
) -> None:
    """Two workers book every 50 ms up to half a second ahead; each send is written late by
    a few ms, now and then by tens (up to the 0.1 s the gate lets go), and reported 0.1 s
    after it was written. The bound holds on the write moments, and at least 98 % of the
    budget is used (no slot is wasted for being late, as every send over 5 ms late was)."""
    rng = random.Random(seed)
    bucket, terms = Bucket(), Terms(rate, window=1.0, horizon=0.5, tolerance=0.2)
    writes, reports = _simulate(bucket, terms, rng, seconds=60 if rate < 10 else 20)
    assert max_in_window([(at, 1) for at in writes]) <= rate
    share = (len(writes) - 1) / (writes[-1] - writes[0]) / rate
    assert share >= 0.98, share
    assert reports  # every send was reported


def _simulate(
    bucket: Bucket, terms: Terms, rng: random.Random, seconds: float
) -> tuple[list[float], list[tuple[float, float]]]:
    """Bookings and late writes on a fake clock; returns the write moments and the reports."""
    writes: list[float] = []
    unreported: list[list[tuple[float, float, float]]] = [[], []]  # (due, slot, written)
    reported: list[tuple[float, float]] = []
    ahead = max(1, round(terms.segments_per_second * terms.horizon / 2))
    for tick in range(int(seconds / 0.025)):
        now, worker = tick * 0.025, tick % 2
        due = [(slot, at) for when, slot, at in unreported[worker] if when <= now]
        unreported[worker] = [r for r in unreported[worker] if r[0] > now]
        reported += due
        for booking in book(bucket, now, [1] * ahead, terms, due):
            if booking.start is None:
                continue
            late = rng.expovariate(1 / 0.003) + (
                rng.uniform(0.01, 0.08) if rng.random() < 0.05 else 0
            )
            written = booking.start + min(late, terms.tolerance / 2)
            writes.append(written)
            unreported[worker].append((written + 0.1, booking.start, written))
    return sorted(writes), reported
