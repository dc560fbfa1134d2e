"""A tenant's credit balance: operator credits, debits at submit, refunds when a send never went.

A tenant without an account is not metered. Every movement is a ledger row; a debit is
written in the transaction that stores its message(s), and (message, kind, round) is unique,
so a crash or a replay can neither lose nor double one.

Errors (beside services/errors.py):
    InsufficientBalance (402)  the hard stop is on and the balance does not cover the cost
    CurrencyMismatch (422)     the message is priced in another currency than the balance
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from smsrelay.domain import billing
from smsrelay.domain.status import Status
from smsrelay.services import alerts
from smsrelay.services.consent import decode_cursor, encode_cursor
from smsrelay.services.errors import InvalidRequest, NotFound, ServiceError
from smsrelay.store.balances import BalanceRepository
from smsrelay.store.database import Database

CREDIT, DEBIT, REFUND = "credit", "debit", "refund"
MAX_NOTE = 500
CREDIT_HINT = "ask the operator to credit it (smsrelay balance credit TENANT_ID AMOUNT)"


class InsufficientBalance(ServiceError):
    code = "insufficient_balance"


class CurrencyMismatch(ServiceError):
    code = "currency_mismatch"


@dataclass(frozen=True, slots=True)
class Movement:
    id: int
    kind: str
    amount: str
    currency: str
    outbox_id: str | None
    note: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class BalanceView:
    """What a tenant (or the operator) sees: the balance, its rules and recent movements."""

    tenant_id: str
    metered: bool
    balance: str | None
    currency: str | None
    low_balance_threshold: str | None
    hard_stop: bool
    movements: list[Movement]
    next_cursor: str | None


# -- operator credits and reading -----------------------------------------------------------


async def credit(
    db: Database,
    tenant_id: str,
    amount: str,
    now: datetime,
    *,
    currency: str | None = None,
    default_currency: str = "USD",
    note: str | None = None,
) -> BalanceView:
    """Add `amount` to the tenant's balance, opening the account (metering starts) if needed."""
    micros = billing.to_micros(_amount(amount))
    wanted = _currency(currency) if currency else None
    note = _note(note)
    async with db.transaction() as connection:
        repo = BalanceRepository(connection)
        state = await _state(repo, tenant_id)
        if state["currency"] is None:
            await repo.open_account(tenant_id, wanted or _currency(default_currency), now)
            state = await _state(repo, tenant_id)
        if wanted is not None and wanted != state["currency"]:
            raise InvalidRequest(
                "currency",
                f"the balance is in {state['currency']}; credit it in {state['currency']} "
                "(one currency per balance)",
            )
        await repo.give(tenant_id, micros, state["threshold"], now)
        entry = _entry(tenant_id, CREDIT, micros, state["currency"], now, note=note)
        await repo.record([entry])
    return await show(db, tenant_id)


async def show(
    db: Database, tenant_id: str, *, limit: int = 50, cursor: str | None = None
) -> BalanceView:
    """The balance and its newest movements (`cursor` pages to older ones)."""
    before = _cursor_id(cursor)
    async with db.reading() as connection:
        repo = BalanceRepository(connection)
        state = await _state(repo, tenant_id)
        rows = await repo.movements(tenant_id, limit + 1, before)
    page = rows[:limit]
    more = len(rows) > limit
    next_cursor = encode_cursor(page[-1]["created_at"], str(page[-1]["id"])) if more else None
    return _view(state, [_movement(row) for row in page], next_cursor)


# -- debits at submit ---------------------------------------------------------------------


async def debit_messages(
    connection: AsyncConnection, rows: Sequence[Mapping[Any, Any]], now: datetime
) -> None:
    """Debit stored outbox rows of one tenant in the caller's transaction: one UPDATE for all.

    For `add_message` (one row) and bulk sends (many). Suppressed rows cost 0 and are skipped.
    `InsufficientBalance` (hard stop) or `CurrencyMismatch` roll the whole batch back.
    Messages that may still need a refund or a failed-SMS alert are remembered for
    `settle_finished`. A tenant with no account and no failed-SMS alerts costs one read.
    """
    if not rows:
        return
    tenant_id = _one_tenant(rows)
    repo = BalanceRepository(connection)
    state = await repo.state(tenant_id)
    if state is None:
        return
    charged = [row for row in rows if row["status"] != Status.SUPPRESSED.value]
    metered = state["currency"] is not None
    debits = _debits(state, charged) if metered else {}
    if debits:
        await _take(repo, state, sum(debits.values()), now)
        await repo.record(
            [_debit_entry(state, row, debits, now) for row in charged if row["id"] in debits]
        )
    watched = (
        charged if alerts.wants_failed_sms(state) else [r for r in charged if r["id"] in debits]
    )
    await repo.watch([_watch_row(row, row["id"] in debits, now) for row in watched])


async def debit_resend(connection: AsyncConnection, row: Mapping[Any, Any], now: datetime) -> None:
    """A resend is a new send: settle the ending it leaves, then debit the next round."""
    repo = BalanceRepository(connection)
    for watched in await repo.claim_finished_for(row["id"]):
        await _settle(connection, watched, now)
    await debit_messages(connection, [{**row, "resend_count": row["resend_count"] + 1}], now)


def _debits(state: RowMapping, rows: Sequence[Mapping[Any, Any]]) -> dict[str, int]:
    """Each costing row's cost in millionths; `CurrencyMismatch` for one priced in another
    currency."""
    debits: dict[str, int] = {}
    for row in rows:
        cost = billing.cost_micros(Decimal(row["total_cost"]))
        if not cost:
            continue  # nothing to pay (e.g. refused before sending): no currency to match
        if row["currency"] != state["currency"]:
            raise CurrencyMismatch(
                f"this message is priced in {row['currency']} but the balance is in "
                f"{state['currency']}; the balance cannot pay for it. Set your price for this "
                f"destination in {state['currency']} (PUT /api/prices/{{provider}}/{{country}})",
                {"messageCurrency": row["currency"], "balanceCurrency": state["currency"]},
            )
        debits[row["id"]] = cost
    return debits


def unpayable(state: RowMapping | None, row: Mapping[Any, Any]) -> CurrencyMismatch | None:
    """Why the tenant's balance cannot pay for `row` (priced in another currency), or None."""
    if state is None or state["currency"] is None:
        return None
    try:
        _debits(state, [row])
    except CurrencyMismatch as exc:
        return exc
    return None


async def _take(repo: BalanceRepository, state: RowMapping, total: int, now: datetime) -> None:
    tenant_id, currency = state["tenant_id"], state["currency"]
    hard_stop = bool(state["hard_stop"])
    after = await repo.take(tenant_id, currency, total, now, hard_stop=hard_stop)
    if after is None:
        raise _insufficient(await repo.state(tenant_id) or state, total)
    if billing.is_low(after, state["threshold"]) and await repo.mark_low_alerted(tenant_id):
        await alerts.queue_low_balance(repo.connection, state, after, now)


def _insufficient(state: RowMapping, cost: int) -> InsufficientBalance:
    balance = billing.format_micros(state["balance_micros"])
    needed = billing.format_micros(cost)
    currency = state["currency"]
    return InsufficientBalance(
        f"the balance is {balance} {currency} and this send costs {needed} {currency}; nothing "
        f"was sent or stored. Top up: {CREDIT_HINT}, or turn the hard stop off (PUT /api/alerts)",
        {"balance": balance, "cost": needed, "currency": currency},
    )


# -- settling endings (refunds, failed-SMS alerts) ----------------------------------------


async def settle_finished(db: Database, now: datetime, limit: int = 100) -> int:
    """Refund and alert for watched messages that reached a final status; how many settled."""
    async with db.transaction() as connection:
        finished = await BalanceRepository(connection).claim_finished(limit)
        for watched in finished:
            await _settle(connection, watched, now)
    return len(finished)


async def _settle(connection: AsyncConnection, watched: RowMapping, now: datetime) -> None:
    repo = BalanceRepository(connection)
    status = Status(watched["status"])
    message_id, send_round = watched["message_id"], watched["send_round"]
    if watched["debited"] and billing.is_refunded(status, watched["provider_message_id"]):
        await _refund(repo, watched, now)
    if status in billing.ALERTED_FAILURES:
        await alerts.queue_failed_sms(connection, watched, now)
    await repo.unwatch(message_id, send_round)


async def _refund(repo: BalanceRepository, watched: RowMapping, now: datetime) -> None:
    message_id, send_round = watched["message_id"], watched["send_round"]
    debit = await repo.movement(message_id, DEBIT, send_round)
    state = await repo.state(watched["tenant_id"])
    if debit is None or state is None:
        return
    amount = -int(debit["amount_micros"])
    entry = _entry(
        watched["tenant_id"], REFUND, amount, debit["currency"], now, message_id, send_round
    )
    entry["note"] = f"message ended {watched['status']} without the provider accepting it"
    if await repo.record_once(entry):
        await repo.give(watched["tenant_id"], amount, state["threshold"], now)


# -- helpers ------------------------------------------------------------------------------


def _one_tenant(rows: Sequence[Mapping[Any, Any]]) -> str:
    tenants = {row["tenant_id"] for row in rows}
    if len(tenants) != 1:
        raise ValueError("debit_messages takes the rows of one tenant at a time")
    return str(tenants.pop())


async def _state(repo: BalanceRepository, tenant_id: str) -> RowMapping:
    state = await repo.state(tenant_id)
    if state is None:
        raise NotFound(f"no tenant {tenant_id!r}; list them with `smsrelay tenants list`")
    return state


def _amount(text: str) -> Decimal:
    try:
        return billing.parse_amount(text)
    except billing.InvalidAmount as exc:
        raise InvalidRequest("amount", str(exc)) from None


def _currency(text: str) -> str:
    code = text.strip().upper()
    if len(code) != 3 or not code.isascii() or not code.isalpha():
        raise InvalidRequest("currency", f"{text!r} is not an ISO 4217 code such as USD or INR")
    return code


def _note(note: str | None) -> str | None:
    if note is None:
        return None
    if len(note) > MAX_NOTE or "\x00" in note:
        raise InvalidRequest("note", f"must be at most {MAX_NOTE} characters of text")
    return note


def _cursor_id(cursor: str | None) -> int | None:
    decoded = decode_cursor(cursor)
    if decoded is None:
        return None
    key = decoded[1]
    if not key.isdigit() or int(key) >= 2**63:
        raise InvalidRequest("cursor", "is not a cursor this API gave out")
    return int(key)


def _entry(
    tenant_id: str,
    kind: str,
    micros: int,
    currency: str,
    now: datetime,
    message_id: str | None = None,
    send_round: int | None = None,
    note: str | None = None,
) -> dict[str, Any]:
    return {
        "tenant_id": tenant_id,
        "kind": kind,
        "message_id": message_id,
        "send_round": send_round,
        "amount_micros": micros,
        "currency": currency,
        "note": note,
        "created_at": now,
    }


def _debit_entry(
    state: RowMapping, row: Mapping[Any, Any], debits: Mapping[str, int], now: datetime
) -> dict[str, Any]:
    return _entry(
        state["tenant_id"],
        DEBIT,
        -debits.get(row["id"], 0),
        state["currency"],
        now,
        row["id"],
        row.get("resend_count", 0),
    )


def _watch_row(row: Mapping[Any, Any], debited: bool, now: datetime) -> dict[str, Any]:
    return {
        "message_id": row["id"],
        "tenant_id": row["tenant_id"],
        "send_round": row.get("resend_count", 0),
        "debited": int(debited),
        "created_at": now,
    }


def _movement(row: RowMapping) -> Movement:
    return Movement(
        id=row["id"],
        kind=row["kind"],
        amount=billing.format_micros(row["amount_micros"]),
        currency=row["currency"],
        outbox_id=row["message_id"],
        note=row["note"],
        created_at=row["created_at"],
    )


def _view(state: RowMapping, movements: list[Movement], next_cursor: str | None) -> BalanceView:
    metered = state["currency"] is not None
    threshold = state["threshold"]
    return BalanceView(
        tenant_id=state["tenant_id"],
        metered=metered,
        balance=billing.format_micros(state["balance_micros"]) if metered else None,
        currency=state["currency"],
        low_balance_threshold=None if threshold is None else billing.format_micros(threshold),
        hard_stop=bool(state["hard_stop"]),
        movements=movements,
        next_cursor=next_cursor,
    )
