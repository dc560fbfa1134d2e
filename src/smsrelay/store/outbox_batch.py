"""Outbox reads and writes for many messages at once: a few statements, whatever the count."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from functools import lru_cache
from typing import Any

from sqlalchemy import Select, Update, and_, bindparam, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from smsrelay.store.tables import message_events, messages

_SEEN_KEY = message_events.c.dedupe_key.label("seen_dedupe_key")
# The statements are built once per shape and their values passed as parameters: building one
# (and its cache key) cost ~0.4 ms a batch, as much as writing a dozen messages.
_STATEMENTS = 64  # shapes kept: a handful are ever used


class OutboxBatch:
    """Batched kin of `OutboxRepository`'s reads and writes, in the caller's transaction."""

    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection

    async def rows_for(
        self,
        ids: Collection[str],
        provider_ids: Collection[str],
        columns: Collection[str],
        dedupe_keys: Collection[str],
    ) -> tuple[list[dict[str, Any]], set[tuple[str, str]]]:
        """`columns` of the messages with one of `ids` or `provider_ids`, locked until the
        transaction ends, and which of `dedupe_keys` their history already holds.

        One query: each message joined to its keyed events (a handful), the keys filtered here;
        asking SQLite for every key of every message would probe the (message, key) index
        n × m times. Locked in id order, so two batches that share messages wait for each other
        instead of deadlocking (SQLite needs no lock: its writers already take turns).
        """
        if not ids and not provider_ids:
            return [], set()
        query = _rows_query(tuple(columns), bool(ids), bool(provider_ids))
        parameters = {"ids": list(ids)} if ids else {}
        if provider_ids:
            parameters["provider_ids"] = list(provider_ids)
        rows: dict[str, dict[str, Any]] = {}
        seen, keys = set(), set(dedupe_keys)
        for row in (await self.connection.execute(query, parameters)).mappings():
            rows.setdefault(row["id"], {name: row[name] for name in columns})
            if row[_SEEN_KEY.name] in keys:
                seen.add((row["id"], row[_SEEN_KEY.name]))
        return list(rows.values()), seen

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
            await self.connection.execute(_update_query(columns), rows)


@lru_cache(maxsize=_STATEMENTS)
def _rows_query(columns: tuple[str, ...], by_id: bool, by_provider_id: bool) -> Select[Any]:
    """`OutboxBatch.rows_for`'s query, taking the lists as `ids` and `provider_ids`."""
    wanted = []
    if by_id:
        wanted.append(messages.c.id.in_(bindparam("ids", expanding=True)))
    if by_provider_id:
        wanted.append(messages.c.provider_message_id.in_(bindparam("provider_ids", expanding=True)))
    keyed = and_(
        message_events.c.message_id == messages.c.id, message_events.c.dedupe_key.is_not(None)
    )
    return (
        select(*(messages.c[name] for name in columns), _SEEN_KEY)
        .select_from(messages.outerjoin(message_events, keyed))
        .where(or_(*wanted))
        .order_by(messages.c.id)
        .with_for_update(of=messages)
    )


@lru_cache(maxsize=_STATEMENTS)
def _update_query(columns: tuple[str, ...]) -> Update:
    """An update of `columns` (`v_<name>`) of the message `v_id`."""
    return (
        update(messages)
        .where(messages.c.id == bindparam("v_id"))
        .values({name: bindparam(f"v_{name}", type_=messages.c[name].type) for name in columns})
    )
