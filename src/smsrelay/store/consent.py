"""Consent repositories: the append-only ledger, suppressions, STOP holds, inbound, settings."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, delete, func, insert, or_, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import ColumnElement, Executable, Select

from smsrelay.domain.status import Status
from smsrelay.store.tables import (
    consent_records,
    inbound_messages,
    messages,
    opt_out_holds,
    suppressions,
    tenant_settings,
)

CONSENT_STATUSES = ("opted_in", "opted_out")


async def _insert_once(connection: AsyncConnection, statement: Executable) -> bool:
    """Run an insert; False (and nothing written) when it hits a unique key."""
    try:
        async with connection.begin_nested():
            await connection.execute(statement)
    except IntegrityError:
        return False
    return True


async def _rows(connection: AsyncConnection, statement: Executable) -> list[RowMapping]:
    return list((await connection.execute(statement)).mappings().all())


def _newest_first(
    query: Select[Any],
    moment: ColumnElement[Any],
    key: ColumnElement[Any],
    before: tuple[datetime, str] | None,
    limit: int,
) -> Select[Any]:
    """One page of `query`, newest first by (moment, key), continuing after `before`."""
    if before is not None:
        last_moment, last_key = before
        query = query.where(or_(moment < last_moment, and_(moment == last_moment, key < last_key)))
    return query.order_by(moment.desc(), key.desc()).limit(limit)


async def _row(connection: AsyncConnection, statement: Executable) -> RowMapping | None:
    return (await connection.execute(statement)).mappings().first()


class ConsentLedger:
    """Appends and reads consent records; there is deliberately no way to change or remove one."""

    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection

    async def append(self, record: Mapping[str, Any]) -> None:
        await self.connection.execute(insert(consent_records).values(**record))

    async def append_many(self, records: list[dict[str, Any]]) -> None:
        if records:
            await self.connection.execute(insert(consent_records), records)

    async def history(self, tenant_id: str, phone: str) -> list[RowMapping]:
        """Every record for the number, oldest first."""
        return await _rows(
            self.connection,
            select(consent_records)
            .where(consent_records.c.tenant_id == tenant_id, consent_records.c.phone == phone)
            .order_by(consent_records.c.seq),
        )

    async def decisions_among(
        self, tenant_id: str, phones: Sequence[str], category: str
    ) -> list[RowMapping]:
        """Opt-ins and opt-outs covering `category` (its own or every category), oldest first."""
        covers = or_(consent_records.c.category == category, consent_records.c.category.is_(None))
        columns = (
            consent_records.c.phone,
            consent_records.c.status,
            consent_records.c.method,
            consent_records.c.seq,
        )
        return await _rows(
            self.connection,
            select(*columns)
            .where(
                consent_records.c.tenant_id == tenant_id,
                consent_records.c.phone.in_(phones),
                consent_records.c.status.in_(CONSENT_STATUSES),
                covers,
            )
            .order_by(consent_records.c.seq),
        )

    async def export(
        self, tenant_id: str, phone: str | None, since: datetime | None
    ) -> list[RowMapping]:
        """Records for a dispute: one number's, or everything recorded since a moment."""
        conditions = [consent_records.c.tenant_id == tenant_id]
        if phone is not None:
            conditions.append(consent_records.c.phone == phone)
        if since is not None:
            conditions.append(consent_records.c.recorded_at >= since)
        query = select(consent_records).where(*conditions).order_by(consent_records.c.seq)
        return await _rows(self.connection, query)


class SuppressionRepository:
    """The per-tenant suppression list, and the STOP holds that block sends meanwhile."""

    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection

    async def get(self, tenant_id: str, phone: str) -> RowMapping | None:
        return await _row(
            self.connection,
            select(suppressions).where(
                suppressions.c.tenant_id == tenant_id, suppressions.c.phone == phone
            ),
        )

    async def add(self, row: Mapping[str, Any]) -> bool:
        """Suppress a number; False when it already was."""
        return await _insert_once(self.connection, insert(suppressions).values(**row))

    async def remove(self, tenant_id: str, phone: str) -> bool:
        result = await self.connection.execute(
            delete(suppressions).where(
                suppressions.c.tenant_id == tenant_id, suppressions.c.phone == phone
            )
        )
        return bool(result.rowcount)

    async def page(
        self, tenant_id: str, before: tuple[datetime, str] | None, limit: int
    ) -> list[RowMapping]:
        """Newest first, continuing after `before` (created_at, phone)."""
        query = select(suppressions).where(suppressions.c.tenant_id == tenant_id)
        page = _newest_first(query, suppressions.c.created_at, suppressions.c.phone, before, limit)
        return await _rows(self.connection, page)

    async def get_among(self, tenant_id: str, phones: Sequence[str]) -> dict[str, RowMapping]:
        params = {"v_tenant": tenant_id, "v_phones": list(phones)}
        rows = (await self.connection.execute(_SUPPRESSED_AMONG, params)).mappings()
        return {row["phone"]: row for row in rows}

    async def held_among(self, tenant_id: str, phones: Sequence[str]) -> set[str]:
        """The numbers among `phones` with a STOP being processed."""
        params = {"v_tenant": tenant_id, "v_phones": list(phones)}
        return set(await self.connection.scalars(_HELD_AMONG, params))

    async def hold(self, tenant_id: str, phone: str, now: datetime) -> None:
        statement = insert(opt_out_holds).values(tenant_id=tenant_id, phone=phone, created_at=now)
        await _insert_once(self.connection, statement)

    async def release(self, tenant_id: str, phone: str) -> None:
        await self.connection.execute(
            delete(opt_out_holds).where(
                opt_out_holds.c.tenant_id == tenant_id, opt_out_holds.c.phone == phone
            )
        )

    async def sends_in_flight(self, tenant_ids: Sequence[str], phone: str, now: datetime) -> int:
        """Messages to the number whose provider call may be under way right now."""
        count = await self.connection.scalar(
            select(func.count())
            .select_from(messages)
            .where(
                messages.c.tenant_id.in_(tenant_ids),
                messages.c.recipient == phone,
                messages.c.status == Status.SENDING.value,
                messages.c.needs_reconcile == 0,
                messages.c.lease_expires_at > now,
            )
        )
        return int(count or 0)


# Built once: every dispatch round and every send asks them (building a statement and its
# cache key cost more than running it).
_SUPPRESSED_AMONG = select(suppressions).where(
    suppressions.c.tenant_id == bindparam("v_tenant"),
    suppressions.c.phone.in_(bindparam("v_phones", expanding=True)),
)
_HELD_AMONG = select(opt_out_holds.c.phone).where(
    opt_out_holds.c.tenant_id == bindparam("v_tenant"),
    opt_out_holds.c.phone.in_(bindparam("v_phones", expanding=True)),
)


class InboundRepository:
    """Inbound messages, one per provider MessageSid."""

    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection

    async def get_by_sid(self, sid: str) -> RowMapping | None:
        return await _row(
            self.connection,
            select(inbound_messages).where(inbound_messages.c.provider_message_id == sid),
        )

    async def add(self, row: Mapping[str, Any]) -> bool:
        """Store one inbound message; False when its MessageSid was stored before."""
        return await _insert_once(self.connection, insert(inbound_messages).values(**row))

    async def page(
        self,
        tenant_id: str,
        keyword: str | None,
        before: tuple[datetime, str] | None,
        limit: int,
    ) -> list[RowMapping]:
        """Newest first, continuing after `before` (received_at, id)."""
        table = inbound_messages
        query = select(table).where(table.c.tenant_id == tenant_id)
        if keyword is not None:
            query = query.where(table.c.keyword == keyword)
        page = _newest_first(query, table.c.received_at, table.c.id, before, limit)
        return await _rows(self.connection, page)

    async def last_sender_tenant(self, phone: str) -> str | None:
        """The tenant whose outbox most recently addressed `phone`."""
        found = await self.connection.scalar(
            select(messages.c.tenant_id)
            .where(messages.c.recipient == phone)
            .order_by(messages.c.created_at.desc())
            .limit(1)
        )
        return None if found is None else str(found)


class TenantSettingsRepository:
    """Per-tenant consent settings: reply texts, quiet hours, the default inbound tenant."""

    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection

    async def get(self, tenant_id: str) -> RowMapping | None:
        return await _row(
            self.connection,
            select(tenant_settings).where(tenant_settings.c.tenant_id == tenant_id),
        )

    async def save(self, tenant_id: str, values: Mapping[str, Any], now: datetime) -> None:
        """Create or change the tenant's settings row."""
        changed = {**values, "updated_at": now}
        result = await self.connection.execute(
            update(tenant_settings)
            .where(tenant_settings.c.tenant_id == tenant_id)
            .values(**changed)
        )
        if not result.rowcount:
            row = {"tenant_id": tenant_id, "inbound_default": 0, **changed}
            await self.connection.execute(insert(tenant_settings).values(**row))

    async def default_inbound_tenant(self) -> str | None:
        found = await self.connection.scalar(
            select(tenant_settings.c.tenant_id).where(tenant_settings.c.inbound_default == 1)
        )
        return None if found is None else str(found)

    async def clear_default_inbound(self, now: datetime) -> None:
        await self.connection.execute(
            update(tenant_settings)
            .where(tenant_settings.c.inbound_default == 1)
            .values(inbound_default=0, updated_at=now)
        )
