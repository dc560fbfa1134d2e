"""The writes that record accepted sends, a batch at a time (dispatch/acceptances.py).

Statements built once whatever the batch's size; each acceptance is a compare-and-set on the
worker's own lease.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import String, bindparam, func, select, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection

from smsrelay.domain.status import Status
from smsrelay.store.claims import moment, rechecked
from smsrelay.store.outbox import NO_ERROR
from smsrelay.store.tables import messages, unmatched_callbacks


async def mark_sent(
    connection: AsyncConnection,
    worker: str,
    sent: Sequence[tuple[str, str | None]],
    now: datetime,
) -> set[str]:
    """`sent` for the messages of `sent` ((id, provider id) pairs) still `sending` on this
    worker's lease, with their provider ids; the ids moved.

    Statements compiled once whatever the batch's size (a CASE over the batch was a new
    statement of n branches to build, key and compile per batch). PostgreSQL: one
    compare-and-set joined to the batch's ids and provider ids (unnest), so each message is
    updated once (a second update for the id is a second row version and index entries).
    SQLite: the compare-and-set over the ids, then the moved ones' provider ids in one
    executemany (cheaper here than binding every column for each message).
    """
    if connection.dialect.name == "postgresql":
        ordered = sorted(sent, key=lambda pair: pair[0])  # rows locked in id order, as the
        params = {  # other batch writers lock them (no deadlock between two batches)
            "v_ids": [message_id for message_id, _ in ordered],
            "v_sids": [sid for _, sid in ordered],
            "v_worker": worker,
            "v_sent_at": now,
            "v_updated_at": now,
        }
        return set((await connection.execute(_MARK_SENT_JOINED, params)).scalars())
    params = {"v_ids": [message_id for message_id, _ in sent], "v_worker": worker}
    moved = set(
        (
            await connection.execute(_MARK_SENT, params | {"v_sent_at": now, "v_updated_at": now})
        ).scalars()
    )
    sids = [{"v_id": message_id, "v_sid": sid} for message_id, sid in sent if message_id in moved]
    if sids:
        await connection.execute(_SET_SID, sids)
    return moved


_SENT_VALUES: dict[str, Any] = {
    "status": Status.SENT.value,
    "sent_at": moment("v_sent_at"),
    "updated_at": moment("v_updated_at"),
    "lease_owner": None,
    "lease_expires_at": None,
    "needs_reconcile": 0,
    **NO_ERROR,
}
_BATCH = (
    func.unnest(
        bindparam("v_ids", type_=postgresql.ARRAY(String)),
        bindparam("v_sids", type_=postgresql.ARRAY(String)),
    )
    .table_valued("id", "sid")
    .render_derived(name="batch")
)
_MARK_SENT_JOINED = (
    update(messages)
    .where(
        messages.c.id == _BATCH.c.id,
        messages.c.status == Status.SENDING.value,
        messages.c.lease_owner == bindparam("v_worker"),
    )
    .values(provider_message_id=_BATCH.c.sid, **_SENT_VALUES)
    .returning(messages.c.id)
)
_MARK_SENT = (
    update(messages)
    .where(
        messages.c.id.in_(bindparam("v_ids", expanding=True)),
        rechecked(messages.c.status) == Status.SENDING.value,
        messages.c.lease_owner == bindparam("v_worker"),
    )
    .values(**_SENT_VALUES)
    .returning(messages.c.id)
)
_SET_SID = (
    update(messages)
    .where(messages.c.id == bindparam("v_id"))
    .values(provider_message_id=bindparam("v_sid", type_=String))
)


async def parked_among(connection: AsyncConnection, sids: list[str | None]) -> set[str | None]:
    """The ids among `sids` that a status callback reached before the send was recorded."""
    known = [sid for sid in sids if sid]
    if not known:
        return set()
    return set((await connection.execute(_PARKED_AMONG, {"v_sids": known})).scalars())


_PARKED_AMONG = select(unmatched_callbacks.c.provider_message_id).where(
    unmatched_callbacks.c.provider_message_id.in_(bindparam("v_sids", expanding=True))
)
