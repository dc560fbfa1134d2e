"""The outbox status machine as data: which statuses exist and which moves go forward."""

from __future__ import annotations

import enum


class Status(enum.StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"
    FAILED = "failed"
    SUPPRESSED = "suppressed"
    EXPIRED = "expired"
    CANCELED = "canceled"


# Rank along the delivery path; a status may only move to a higher rank.
# Terminal statuses share the top rank so none of them replaces another.
_RANK: dict[Status, int] = {
    Status.PENDING: 0,
    Status.SENDING: 1,
    Status.SENT: 2,
    Status.DELIVERED: 3,
    Status.UNDELIVERED: 3,
    Status.FAILED: 3,
    Status.SUPPRESSED: 3,
    Status.EXPIRED: 3,
    Status.CANCELED: 3,
}

TERMINAL: frozenset[Status] = frozenset(s for s, rank in _RANK.items() if rank == 3)

# A failed send attempt returns a message to pending for a retry; that is the one
# backwards move, and only the dispatcher makes it (never a provider callback).
_RETRY_MOVES: frozenset[tuple[Status, Status]] = frozenset({(Status.SENDING, Status.PENDING)})

# A resend starts a finished-but-unsuccessful message again.
RESENDABLE: frozenset[Status] = frozenset({Status.FAILED, Status.UNDELIVERED})


def moves_forward(current: Status, new: Status) -> bool:
    """True when `new` is a step forward from `current` (late or duplicate updates are not)."""
    return _RANK[new] > _RANK[current]


def may_retry(current: Status, new: Status) -> bool:
    """True for the dispatcher's own retry move (sending back to pending)."""
    return (current, new) in _RETRY_MOVES


def is_terminal(status: Status) -> bool:
    return status in TERMINAL
