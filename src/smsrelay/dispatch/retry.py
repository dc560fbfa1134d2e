"""Pure retry policy: given an attempt's outcome, decide when (or whether) to try again."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True, slots=True)
class RetryDecision:
    """`retry_at` is set when the message should be tried again; else `give_up_reason`."""

    retry_at: datetime | None
    give_up_reason: str | None = None


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with full jitter, capped in attempts and in delay."""

    max_attempts: int = 5
    base_delay: float = 1.0
    max_delay: float = 300.0

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based)."""
        ceiling = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        return (rng or random).uniform(ceiling / 2, ceiling)

    def decide(
        self,
        *,
        attempt: int,
        now: datetime,
        expires_at: datetime | None,
        retry_after: float | None = None,
        rng: random.Random | None = None,
    ) -> RetryDecision:
        if attempt >= self.max_attempts:
            return RetryDecision(None, f"gave up after {attempt} attempts")
        wait = max(self.delay(attempt, rng), retry_after or 0.0)
        retry_at = now + timedelta(seconds=wait)
        if expires_at is not None and retry_at >= expires_at:
            return RetryDecision(None, "validity period ends before the next attempt")
        return RetryDecision(retry_at)
