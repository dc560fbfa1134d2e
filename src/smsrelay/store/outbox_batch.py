"""Outbox reads and writes for many messages at once: a few statements, whatever the count."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from sqlalchemy import bindparam, insert, or_, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from smsrelay.store.tables import message_events, messages


class OutboxBatch:
    """Batched kin of `OutboxRepository`'s reads and writes, in the caller's transaction."""

    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection

    async def rows_for(
        self, ids: Collection[str], provider_ids: Collection[str], columns: Collection[str]
    ) -> list[RowMapping]:
        """`columns` of the messages with one of `ids` or `provider_ids`, locked until the
        transaction ends.

        Locked in id order, so two batches that share messages wait for each other instead of
        deadlocking (SQLite needs no lock: its writers already take turns).
        """
        wanted = []
        if ids:
            wanted.append(messages.c.id.in_(ids))
        if provider_ids:
            wanted.append(messages.c.provider_message_id.in_(provider_ids))
        if not wanted:
            return []
        query = select(*(messages.c[name] for name in columns)).where(or_(*wanted))
        query = query.order_by(messages.c.id).with_for_update(of=messages)
        return list((await self.connection.execute(query)).mappings().all())

    async def seen_dedupe_keys(
        self, message_ids: Collection[str], dedupe_keys: Collection[str]
    ) -> set[tuple[str, str]]:
        """Which of these messages' dedupe keys, among `dedupe_keys`, the history already holds.

        Selected by message alone (a message has a handful of events): SQLite would look up
        every message with every key, n × m probes of the (message, key) index.
        """
        if not message_ids or not dedupe_keys:
            return set()
        query = select(message_events.c.message_id, message_events.c.dedupe_key).where(
            message_events.c.message_id.in_(message_ids),
            message_events.c.dedupe_key.is_not(None),
        )
        wanted = set(dedupe_keys)
        rows = await self.connection.execute(query)
        return {(row.message_id, row.dedupe_key) for row in rows if row.dedupe_key in wanted}

    async def add_events(self, events: Sequence[Mapping[str, Any]]) -> None:
        """Append events in the given order (a dedupe key seen before is an IntegrityError)."""
        if events:
            await self.connection.execute(insert(message_events), [dict(e) for e in events])

    async def update_each(self, values_by_id: Mapping[str, Mapping[str, Any]]) -> None:
        """Set each message's values: one statement per set of columns changed."""
        by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for message_id, values in values_by_id.items():
            params = {f"v_{name}": value for name, value in values.items()}
            by_columns.setdefault(tuple(sorted(values)), []).append(params | {"v_id": message_id})
        for columns, rows in by_columns.items():
            statement = (
                update(messages)
                .where(messages.c.id == bindparam("v_id"))
                .values(
                    {name: bindparam(f"v_{name}", type_=messages.c[name].type) for name in columns}
                )
            )
            await self.connection.execute(statement, rows)
