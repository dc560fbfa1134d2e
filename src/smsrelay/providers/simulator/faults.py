"""Fault injection knobs for the simulator: rates from 0 to 1 rolled on one seeded random."""

from __future__ import annotations

import random
from dataclasses import dataclass, field, fields

_RATE_FIELDS = (
    "error_5xx_rate",
    "error_5xx_after_accept_rate",
    "rate_429",
    "timeout_rate",
    "callback_duplicate_rate",
    "callback_reorder_rate",
)


@dataclass
class Faults:
    """What can go wrong, and how often. Mutable: tests turn knobs on a running simulator.

    latency                      seconds added before every create is answered.
    error_5xx_rate               500 before the message is accepted (nothing recorded).
    error_5xx_after_accept_rate  message accepted and recorded, then 500 (the ambiguous case).
    rate_429                     429 with Retry-After and code 20429 (nothing recorded).
    timeout_rate                 message accepted, then no answer for `timeout_seconds`.
    callback_duplicate_rate      each status callback posted twice (same idempotency token).
    callback_reorder_rate        a message's last two status callbacks posted swapped.
    """

    latency: float = 0.0
    error_5xx_rate: float = 0.0
    error_5xx_after_accept_rate: float = 0.0
    rate_429: float = 0.0
    retry_after_seconds: int = 1
    timeout_rate: float = 0.0
    timeout_seconds: float = 30.0
    callback_duplicate_rate: float = 0.0
    callback_reorder_rate: float = 0.0
    seed: int | None = 0
    rng: random.Random = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in _RATE_FIELDS:
            check_rate(name, getattr(self, name))
        self.rng = random.Random(self.seed)  # noqa: S311  # fault injection, not security

    def roll(self, rate: float) -> bool:
        """True with probability `rate` (never at 0, always at 1)."""
        return rate > 0 and self.rng.random() < rate

    def reset(self) -> None:
        """Turn every fault off and reseed, keeping the seed."""
        defaults = Faults(seed=self.seed)
        for item in fields(self):
            setattr(self, item.name, getattr(defaults, item.name))


def check_rate(name: str, rate: float) -> None:
    """Raise ValueError unless `rate` is a probability."""
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"{name} must be between 0 and 1, got {rate}")
