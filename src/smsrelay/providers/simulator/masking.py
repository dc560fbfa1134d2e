"""The simulator's logger and the masking it applies: no whole phone number, no message body."""

from __future__ import annotations

import logging

logger = logging.getLogger("smsrelay.providers.simulator")


def mask_number(number: str | None) -> str:
    """Keep only the last four characters of a phone number: '+15551234567' -> '***4567'."""
    return "***" + number[-4:] if number else ""
