"""SQL for balance accounts, their ledger and the messages whose ending is still to be settled."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, case, delete, insert, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from smsrelay.domain.status import TERMINAL
from smsrelay.store.tables import (
    alert_settings,
    balance_accounts,
    balance_ledger,
    balance_watch,
    messages,
    tenants,
)

_TERMINAL = [status.value for status in TERMINAL]


class BalanceRepository:
    """Reads and writes one tenant's balance inside the caller's transaction."""

    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection

    async def state(self, tenant_id: str) -> RowMapping | None:
        """The tenant's account (columns None when not metered) and alert settings, in one
        primary-key read; None for an unknown tenant."""
        joined = tenants.outerjoin(
            balance_accounts, balance_accounts.c.tenant_id == tenants.c.id
        ).outerjoin(alert_settings, alert_settings.c.tenant_id == tenants.c.id)
        query = (
            select(
                tenants.c.id.label("tenant_id"),
                balance_accounts.c.currency,
                balance_accounts.c.balance_micros,
                balance_accounts.c.low_alerted,
                balance_accounts.c.updated_at,
                alert_settings.c.low_balance_threshold_micros.label("threshold"),
                alert_settings.c.hard_stop,
                alert_settings.c.failed_sms,
                alert_settings.c.url,
                alert_settings.c.email,
            )
            .select_from(joined)
            .where(tenants.c.id == tenant_id)
        )
        return (await self.connection.execute(query)).mappings().first()

    async def open_account(self, tenant_id: str, currency: str, now: datetime) -> None:
        """Create an empty account unless one exists (a concurrent create is not an error)."""
        values = {
            "tenant_id": tenant_id,
            "currency": currency,
            "balance_micros": 0,
            "low_alerted": 0,
            "created_at": now,
            "updated_at": now,
        }
        try:
            async with self.connection.begin_nested():
                await self.connection.execute(insert(balance_accounts).values(values))
        except IntegrityError:
            return

    async def take(
        self, tenant_id: str, currency: str, micros: int, now: datetime, *, hard_stop: bool
    ) -> int | None:
        """Subtract `micros` in one conditional UPDATE; the new balance, or None if refused.

        With `hard_stop` the row changes only while the balance covers the amount, so
        concurrent debits queue on the row lock and none can take the balance below zero.
        """
        account = balance_accounts.c
        conditions = [account.tenant_id == tenant_id, account.currency == currency]
        if hard_stop:
            conditions.append(account.balance_micros >= micros)
        statement = (
            update(balance_accounts)
            .where(*conditions)
            .values(balance_micros=account.balance_micros - micros, updated_at=now)
            .returning(account.balance_micros)
        )
        after = (await self.connection.execute(statement)).scalar_one_or_none()
        return None if after is None else int(after)

    async def give(self, tenant_id: str, micros: int, threshold: int | None, now: datetime) -> int:
        """Add `micros`; re-arm the low-balance alert once the balance is back at the threshold."""
        account = balance_accounts.c
        after = account.balance_micros + micros
        rearm = 0 if threshold is None else case((after >= threshold, 0), else_=account.low_alerted)
        statement = (
            update(balance_accounts)
            .where(account.tenant_id == tenant_id)
            .values(balance_micros=after, low_alerted=rearm, updated_at=now)
            .returning(account.balance_micros)
        )
        return int((await self.connection.execute(statement)).scalar_one())

    async def mark_low_alerted(self, tenant_id: str) -> bool:
        """Flag the low-balance alert as sent; False when another transaction did it first."""
        statement = (
            update(balance_accounts)
            .where(balance_accounts.c.tenant_id == tenant_id, balance_accounts.c.low_alerted == 0)
            .values(low_alerted=1)
        )
        return bool((await self.connection.execute(statement)).rowcount)

    async def rearm_low_alert(self, tenant_id: str, threshold: int | None) -> None:
        """After a threshold change: alert again at the next debit below the new threshold."""
        account = balance_accounts.c
        statement = update(balance_accounts).where(account.tenant_id == tenant_id)
        if threshold is not None:
            statement = statement.where(account.balance_micros >= threshold)
        await self.connection.execute(statement.values(low_alerted=0))

    async def record(self, entries: Sequence[dict[str, Any]]) -> None:
        """Append ledger rows (one statement); a repeated (message, kind, round) raises."""
        if entries:
            await self.connection.execute(insert(balance_ledger), list(entries))

    async def record_once(self, entry: dict[str, Any]) -> bool:
        """Append one ledger row unless its (message, kind, round) is there already."""
        try:
            async with self.connection.begin_nested():
                await self.connection.execute(insert(balance_ledger).values(entry))
        except IntegrityError:
            return False
        return True

    async def movement(self, message_id: str, kind: str, send_round: int) -> RowMapping | None:
        query = select(balance_ledger).where(
            balance_ledger.c.message_id == message_id,
            balance_ledger.c.kind == kind,
            balance_ledger.c.send_round == send_round,
        )
        return (await self.connection.execute(query)).mappings().first()

    async def movements(
        self, tenant_id: str, limit: int, before_id: int | None
    ) -> list[RowMapping]:
        """The newest ledger rows first, `limit` of them, older than `before_id` when given."""
        query = select(balance_ledger).where(balance_ledger.c.tenant_id == tenant_id)
        if before_id is not None:
            query = query.where(balance_ledger.c.id < before_id)
        query = query.order_by(balance_ledger.c.id.desc()).limit(limit)
        return list((await self.connection.execute(query)).mappings().all())

    async def watch(self, rows: Sequence[dict[str, Any]]) -> None:
        """Remember messages whose ending must be settled (a resend settles the last one first)."""
        if rows:
            await self.connection.execute(insert(balance_watch), list(rows))

    async def claim_finished(self, limit: int) -> list[RowMapping]:
        """Watched messages that reached a final status, with what settling them needs."""
        query = _finished().limit(limit).with_for_update(skip_locked=True, of=balance_watch)
        return list((await self.connection.execute(query)).mappings().all())

    async def claim_finished_for(self, message_id: str) -> list[RowMapping]:
        """The watch on one message if it reached a final status (waits for a settling loop)."""
        query = _finished().where(balance_watch.c.message_id == message_id)
        return list(
            (await self.connection.execute(query.with_for_update(of=balance_watch)))
            .mappings()
            .all()
        )

    async def unwatch(self, message_id: str, send_round: int) -> None:
        await self.connection.execute(
            delete(balance_watch).where(
                balance_watch.c.message_id == message_id,
                balance_watch.c.send_round == send_round,
            )
        )


def _finished() -> Select[Any]:
    """Watched messages in a final status, oldest watch first."""
    return (
        select(
            balance_watch,
            messages.c.status,
            messages.c.provider_message_id,
            messages.c.recipient,
            messages.c.error_code,
            messages.c.updated_at,
        )
        .select_from(balance_watch.join(messages, messages.c.id == balance_watch.c.message_id))
        .where(messages.c.status.in_(_TERMINAL))
        .order_by(balance_watch.c.created_at)
    )
