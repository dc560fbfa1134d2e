"""Sliding-window arithmetic for pacing tests and the pacing benchmark."""

from __future__ import annotations


def max_in_window(starts: list[tuple[float, int]], window: float = 1.0) -> int:
    """The most segments starting in any half-open window [t, t + window), sliding (not aligned).

    `starts` holds (seconds, segments). Starts a float rounding apart from a window's edge count
    as outside it.
    """
    ordered = sorted(starts)
    best = total = left = 0
    for at, cost in ordered:  # two pointers: the window that ends just after each start
        total += cost
        while ordered[left][0] <= at - window + 1e-9:
            total -= ordered[left][1]
            left += 1
        best = max(best, total)
    return best
