"""Balance rules as data: exact money in millionths, which endings are refunded or alerted."""

from __future__ import annotations

from decimal import ROUND_CEILING, Decimal, InvalidOperation

from smsrelay.domain.status import Status

# Balances and ledger amounts are whole millionths of the currency unit (exact integers on
# SQLite and PostgreSQL alike). Tenant prices have at most 6 decimals (services/prices.py),
# so every message cost is a whole number of millionths.
MICROS_PER_UNIT = 1_000_000
# The largest balance or credit accepted: 10^12 units, far below 2^63 millionths.
MAX_UNITS = Decimal(10) ** 12

# Endings where the provider never accepted the message, so its debit is given back.
REFUNDED_ALWAYS: frozenset[Status] = frozenset(
    {
        Status.SUPPRESSED,  # blocked by consent or an opt-out at dispatch
        Status.EXPIRED,  # its validity passed before it was sent
        Status.CANCELED,  # canceled before it went out
    }
)
# `failed` is refunded only when no provider ever gave the message an id (refused at send).
REFUNDED_WITHOUT_PROVIDER_ID: frozenset[Status] = frozenset({Status.FAILED})

# Endings that raise a failed-SMS alert (once per message).
ALERTED_FAILURES: frozenset[Status] = frozenset({Status.FAILED, Status.UNDELIVERED})


class InvalidAmount(ValueError):
    """An amount is not a finite decimal with at most 6 decimals in range."""


def parse_amount(text: str, *, allow_zero: bool = False) -> Decimal:
    """A decimal string as an exact amount, or `InvalidAmount` saying what to change."""
    try:
        amount = Decimal(text.strip())
    except InvalidOperation:
        raise InvalidAmount(f"{text!r} is not a decimal number such as 25 or 10.50") from None
    if not amount.is_finite():
        raise InvalidAmount(f"{text!r} is not a finite number")
    if amount < 0 or (amount == 0 and not allow_zero):
        raise InvalidAmount(f"{text!r} must be {'zero or ' if allow_zero else ''}positive")
    if amount >= MAX_UNITS:
        raise InvalidAmount(f"{text!r} is too large; the limit is {MAX_UNITS:f}")
    to_micros(amount)
    return amount


def to_micros(amount: Decimal) -> int:
    """`amount` in millionths; `InvalidAmount` when it has more than 6 decimals."""
    scaled = amount * MICROS_PER_UNIT
    if scaled != scaled.to_integral_value():
        raise InvalidAmount(f"{amount} has more than 6 decimals")
    return int(scaled)


def cost_micros(cost: Decimal) -> int:
    """A message's cost in millionths, rounded up should a price ever carry more decimals."""
    return int((cost * MICROS_PER_UNIT).to_integral_value(rounding=ROUND_CEILING))


def from_micros(micros: int) -> Decimal:
    return Decimal(micros).scaleb(-6)


def format_micros(micros: int) -> str:
    """Millionths as a plain decimal string without trailing zeros: 1500000 -> '1.5'."""
    text = f"{from_micros(micros):f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def is_refunded(status: Status, provider_message_id: str | None) -> bool:
    """True when a message that ended in `status` gets its debit back."""
    if status in REFUNDED_ALWAYS:
        return True
    return status in REFUNDED_WITHOUT_PROVIDER_ID and provider_message_id is None


def is_low(balance: int, threshold: int | None) -> bool:
    """True when `balance` is below the low-balance threshold (never without one)."""
    return threshold is not None and balance < threshold


def retry_delay(attempts: int, base: float = 5.0, cap: float = 3600.0) -> float:
    """Seconds before the next delivery try of an alert after `attempts` failed ones."""
    return float(min(cap, base * 2 ** max(0, attempts - 1)))
