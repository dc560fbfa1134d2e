"""Outbox repository: messages, their tags and their append-only event history."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Table, and_, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from smsrelay.domain import pricing
from smsrelay.domain.messages import ErrorDetails, MessageEvent, OutboxEntry
from smsrelay.domain.status import Status
from smsrelay.store.tables import message_events, message_tags, messages


@dataclass(frozen=True, slots=True)
class OutboxFilter:
    tenant_id: str
    status: str | None = None
    tag: str | None = None
    recipient: str | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    before: tuple[datetime, str] | None = None
    limit: int = 50


# INSERT … ON CONFLICT DO NOTHING, spelled by each backend's dialect.
_INSERT_BY_DIALECT: dict[str, Callable[[Table], postgresql.Insert | sqlite.Insert]] = {
    "postgresql": postgresql.insert,
    "sqlite": sqlite.insert,
}


@dataclass(frozen=True, slots=True)
class MessageEventNote:
    """The kind and data of one history event a repository write records."""

    kind: str
    data: dict[str, Any]


# Rows per INSERT batch: well under SQLite's 32,766 bound parameters per statement.
WRITE_BATCH = 5000


class OutboxRepository:
    """Reads and writes outbox rows inside the caller's transaction."""

    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection

    async def add(self, row: Mapping[str, Any]) -> RowMapping:
        """Insert a message and its tags; the row as stored, every default filled in."""
        (stored,) = await self.add_many([row], (), returning=True)
        return stored

    async def add_many(
        self,
        rows: Sequence[Mapping[str, Any]],
        events: Sequence[Mapping[str, Any]],
        *,
        returning: bool = False,
    ) -> list[RowMapping]:
        """Messages, their tags and their first events, a few statements for any number of rows.

        With `returning`, the rows as stored (every default filled in), in the order given.
        """
        rows = _same_keys(rows)  # an executemany takes its columns from the first row
        tags = [
            {"message_id": row["id"], "tag": tag, "tenant_id": row["tenant_id"]}
            for row in rows
            for tag in row["tags"] or ()
        ]
        stored: list[RowMapping] = []
        for start in range(0, len(rows), WRITE_BATCH):
            chunk = rows[start : start + WRITE_BATCH]
            if returning:
                statement = insert(messages).returning(*messages.c, sort_by_parameter_order=True)
                stored += (await self.connection.execute(statement, chunk)).mappings().all()
            else:
                await self.connection.execute(insert(messages), chunk)
        for table, batch in ((message_tags, tags), (message_events, events)):
            for start in range(0, len(batch), WRITE_BATCH):
                await self.connection.execute(
                    insert(table), list(batch[start : start + WRITE_BATCH])
                )
        return stored

    async def get_row(
        self, message_id: str, tenant_id: str | None = None, *, lock: bool = False
    ) -> RowMapping | None:
        """One message (`lock`: held until the transaction ends, so a rival waits)."""
        query = select(messages).where(messages.c.id == message_id)
        if tenant_id is not None:
            query = query.where(messages.c.tenant_id == tenant_id)
        if lock:
            query = query.with_for_update()
        return (await self.connection.execute(query)).mappings().first()

    async def get_by_provider_id(self, provider_message_id: str) -> RowMapping | None:
        query = select(messages).where(messages.c.provider_message_id == provider_message_id)
        return (await self.connection.execute(query)).mappings().first()

    async def update(self, message_id: str, **values: Any) -> None:
        await self.connection.execute(
            update(messages).where(messages.c.id == message_id).values(**values)
        )

    async def update_if_status(self, message_id: str, expected: Status, **values: Any) -> bool:
        """Compare-and-set on status: True when the row was still in `expected`."""
        result = await self.connection.execute(
            update(messages)
            .where(messages.c.id == message_id, messages.c.status == expected.value)
            .values(**values)
        )
        return bool(result.rowcount)

    async def update_if_owned(self, message_id: str, owner: str, **values: Any) -> bool:
        """Compare-and-set for a dispatcher: only while the message is `sending` on its lease."""
        result = await self.connection.execute(
            update(messages)
            .where(
                messages.c.id == message_id,
                messages.c.status == Status.SENDING.value,
                messages.c.lease_owner == owner,
            )
            .values(**values)
        )
        return bool(result.rowcount)

    async def release_claim(
        self, row: RowMapping, owner: str, now: datetime, due: datetime, event: MessageEventNote
    ) -> bool:
        """Put a claimed message back to `pending`, due at `due`, if `owner` still holds it.

        Not an attempt: the claim's attempt count is given back. The event records why.
        """
        released = await self.update_if_owned(
            row["id"],
            owner,
            status=Status.PENDING.value,
            next_attempt_at=due,
            attempt_count=row["attempt_count"] - 1,
            lease_owner=None,
            lease_expires_at=None,
            updated_at=now,
        )
        if released:
            await self.add_event(
                row["id"],
                event.kind,
                now,
                from_status=Status.SENDING.value,
                to_status=Status.PENDING.value,
                data=event.data,
            )
        return released

    async def page(self, query: OutboxFilter) -> list[RowMapping]:
        statement = select(messages).where(*_conditions(query))
        statement = statement.order_by(messages.c.created_at.desc(), messages.c.id.desc())
        result = await self.connection.execute(statement.limit(query.limit))
        return list(result.mappings().all())

    async def add_event(
        self,
        message_id: str,
        kind: str,
        at: datetime,
        *,
        from_status: str | None = None,
        to_status: str | None = None,
        data: Mapping[str, Any] | None = None,
        dedupe_key: str | None = None,
    ) -> bool:
        """Append an event; False (and nothing written) when `dedupe_key` was seen before."""
        values = event_row(
            message_id,
            kind,
            at,
            from_status=from_status,
            to_status=to_status,
            data=data,
            dedupe_key=dedupe_key,
        )
        if dedupe_key is None:
            await self.connection.execute(insert(message_events).values(**values))
            return True
        return await self._insert_once(values)

    async def _insert_once(self, values: dict[str, Any]) -> bool:
        """One statement: insert unless (message, dedupe key) is stored; True when inserted."""
        insert_for = _INSERT_BY_DIALECT[self.connection.dialect.name]
        statement = (
            insert_for(message_events)
            .values(**values)
            .on_conflict_do_nothing(index_elements=["message_id", "dedupe_key"])
            .returning(message_events.c.id)
        )
        return (await self.connection.execute(statement)).first() is not None

    async def events(self, message_id: str) -> list[MessageEvent]:
        result = await self.connection.execute(
            select(message_events)
            .where(message_events.c.message_id == message_id)
            .order_by(message_events.c.id)
        )
        return [event_of(row) for row in result.mappings()]

    async def count_by_status(self) -> dict[str, int]:
        result = await self.connection.execute(
            select(messages.c.status, func.count()).group_by(messages.c.status)
        )
        return {row[0]: row[1] for row in result}


def _same_keys(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Every row with every key any row has (None where absent)."""
    keys = dict.fromkeys(key for row in rows for key in row)
    return [{key: row.get(key) for key in keys} for row in rows]


def _conditions(query: OutboxFilter) -> list[Any]:
    conditions: list[Any] = [messages.c.tenant_id == query.tenant_id]
    if query.status:
        conditions.append(messages.c.status == query.status)
    if query.recipient:
        conditions.append(messages.c.recipient == query.recipient)
    if query.created_from:
        conditions.append(messages.c.created_at >= query.created_from)
    if query.created_to:
        conditions.append(messages.c.created_at < query.created_to)
    if query.tag:
        tagged = select(message_tags.c.message_id).where(
            message_tags.c.tenant_id == query.tenant_id, message_tags.c.tag == query.tag
        )
        conditions.append(messages.c.id.in_(tagged))
    if query.before:
        created, message_id = query.before
        conditions.append(
            or_(
                messages.c.created_at < created,
                and_(messages.c.created_at == created, messages.c.id < message_id),
            )
        )
    return conditions


def event_row(
    message_id: str,
    kind: str,
    at: datetime,
    *,
    from_status: str | None = None,
    to_status: str | None = None,
    data: Mapping[str, Any] | None = None,
    dedupe_key: str | None = None,
) -> dict[str, Any]:
    """One `message_events` row, for `add_event` or a batch's executemany."""
    return {
        "message_id": message_id,
        "kind": kind,
        "created_at": at,
        "from_status": from_status,
        "to_status": to_status,
        "data": dict(data or {}),
        "dedupe_key": dedupe_key,
    }


def event_of(row: Mapping[Any, Any]) -> MessageEvent:
    """A history event from its row (read, or about to be written)."""
    return MessageEvent(
        kind=row["kind"],
        created_at=row["created_at"],
        from_status=row["from_status"],
        to_status=row["to_status"],
        data=row["data"] or {},
    )


def to_entry(row: RowMapping, events: Sequence[MessageEvent] = ()) -> OutboxEntry:
    """Turn a stored row into the domain's outbox entry."""
    return OutboxEntry(
        outbox_id=row["id"],
        tenant_id=row["tenant_id"],
        user_id=row["user_id"],
        recipient=row["recipient"],
        message=row["body"],
        sender_id=row["sender_id"],
        provider=row["provider"],
        provider_message_id=row["provider_message_id"],
        category=row["category"],
        encoding=row["encoding"],
        segments=row["segments"],
        cost_per_unit=row["cost_per_unit"],
        total_cost=row["total_cost"],
        currency=row["currency"],
        status=Status(row["status"]),
        created_at=row["created_at"],
        sent_at=row["sent_at"],
        last_attempt_at=row["last_attempt_at"],
        delivered_at=row["delivered_at"],
        scheduled_at=row["scheduled_at"],
        retry_count=row["retry_count"],
        error=_error(row),
        tags=list(row["tags"] or []),
        custom_data=dict(row["custom_data"] or {}),
        template_key=row["template_key"],
        events=list(events),
        provider_cost=row["provider_price"],
        provider_currency=row["provider_price_unit"],
        cost_difference=_difference(row),
    )


def _difference(row: RowMapping) -> str | None:
    difference = pricing.cost_difference(
        row["provider_price"], row["total_cost"], row["provider_price_unit"], row["currency"]
    )
    return None if difference is None else str(difference)


# The outbox's error columns of a message without an error.
NO_ERROR: dict[str, Any] = {
    "error_code": None,
    "error_message": None,
    "error_more_info": None,
    "error_details": None,
}


def _error(row: RowMapping) -> ErrorDetails | None:
    if row["error_message"] is None and row["error_code"] is None:
        return None
    return ErrorDetails(
        message=row["error_message"] or "",
        code=row["error_code"],
        more_info=row["error_more_info"],
        details=row["error_details"],
    )
