"""Recording what happened to a message: send attempts and provider status updates."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from smsrelay import metrics
from smsrelay.domain.status import Status, moves_forward
from smsrelay.providers.base import ProviderError, SendResult
from smsrelay.store.database import Database
from smsrelay.store.group_commit import GroupCommit
from smsrelay.store.outbox import NO_ERROR, OutboxRepository, event_row
from smsrelay.store.outbox_batch import OutboxBatch
from smsrelay.store.tables import unmatched_callbacks


@dataclass(frozen=True, slots=True)
class MessageScope:
    """The messages an update may change: the platform account's sends and/or some tenants'.

    A tenant's key (`tenant_ids`, of `provider`) admits only that tenant's messages sent
    through its own `provider` config: never those the platform's account sent for it, nor
    those of its other providers' accounts.
    """

    platform: bool = False
    tenant_ids: frozenset[str] = frozenset()
    provider: str | None = None

    def admits(self, row: Mapping[str, Any]) -> bool:
        if row["provider_config_id"] is None:
            return self.platform
        return row["tenant_id"] in self.tenant_ids and row["provider"] == self.provider


@dataclass(frozen=True, slots=True)
class StatusUpdate:
    """A provider's word on a message's delivery, from a webhook or a reconciliation."""

    provider_message_id: str
    status: Status
    provider_status: str
    dedupe_key: str
    received_at: datetime
    outbox_id: str | None = None
    error: ProviderError | None = None
    raw: dict[str, Any] = field(default_factory=dict)
    scope: MessageScope | None = None  # None: any message (our own reconciliation)


def error_columns(error: ProviderError | None) -> dict[str, Any]:
    """The outbox's error columns for `error` (all None when there is none)."""
    if error is None:
        return dict(NO_ERROR)
    return {
        "error_code": None if error.code is None else str(error.code),
        "error_message": error.message,
        "error_more_info": error.more_info,
        "error_details": error.details,
    }


async def apply_status_update(db: Database, update: StatusUpdate) -> str:
    """Apply an update if it moves forward: applied|ignored|stale|duplicate|unmatched|foreign."""
    async with db.transaction() as connection:
        (result,) = await write_status_updates(connection, [update])
    metrics.STATUS_UPDATES.labels(result).inc()
    return result


def status_update_group(db: Database, *, max_batch: int = 256) -> GroupCommit[StatusUpdate, str]:
    """Where concurrent webhooks' updates queue to be applied a batch per transaction."""
    return GroupCommit(db, write_status_updates, max_batch=max_batch)


async def submit_status_update(group: GroupCommit[StatusUpdate, str], update: StatusUpdate) -> str:
    """`apply_status_update` in `group`'s next batch; the result once that batch committed."""
    result = await group.submit(update)
    metrics.STATUS_UPDATES.labels(result).inc()
    return result


async def write_status_updates(
    connection: AsyncConnection, updates: Sequence[StatusUpdate]
) -> list[str]:
    """Apply `updates` in the caller's transaction, in order; one result for each.

    The messages and the dedupe keys they have seen are read in one query, the events
    written in one and the messages in one per set of columns changed. Each update sees the
    ones before it in the batch: a second callback for a message is judged on the first's
    outcome, and a repeated dedupe key is a duplicate, as if they had come one by one.
    """
    batch = OutboxBatch(connection)
    rows, seen = await batch.rows_for(
        {u.outbox_id for u in updates if u.outbox_id},
        {u.provider_message_id for u in updates},
        _COLUMNS_READ,
        {u.dedupe_key for u in updates},
    )
    pending = _PendingWrites(rows, seen)
    outbox = OutboxRepository(connection)
    results = [await pending.apply(outbox, update) for update in updates]
    await batch.add_events(pending.events)
    await batch.update_each(pending.changes)
    for update in pending.unmatched:
        await _park_unmatched(connection, update)
    return results


# What deciding and recording an update reads of its message (not the body, tags, prices…);
# `_status_values` leaves out the ones it would not change.
_COLUMNS_READ = (
    "id",
    "tenant_id",
    "provider",
    "provider_config_id",
    "provider_message_id",
    "status",
    "sent_at",
    "resend_count",
    "lease_owner",
    "lease_expires_at",
    "needs_reconcile",
)


class _PendingWrites:
    """A batch's messages as its updates leave them, and the writes that will record that."""

    def __init__(self, rows: Sequence[dict[str, Any]], seen: set[tuple[str, str]]) -> None:
        self.by_id: dict[str, dict[str, Any]] = {row["id"]: row for row in rows}
        self.by_sid: dict[str, dict[str, Any]] = {}
        for message in self.by_id.values():
            if message["provider_message_id"] is not None:
                self.by_sid.setdefault(message["provider_message_id"], message)
        self.seen = seen
        self.events: list[dict[str, Any]] = []
        self.changes: dict[str, dict[str, Any]] = {}
        self.unmatched: list[StatusUpdate] = []

    def find(self, update: StatusUpdate) -> dict[str, Any] | None:
        """The message by `outboxId` when its provider id agrees, else by provider id."""
        if update.outbox_id:
            message = self.by_id.get(update.outbox_id)
            if message is not None and message["provider_message_id"] in (
                None,
                update.provider_message_id,
            ):
                return message
        return self.by_sid.get(update.provider_message_id)

    async def apply(self, outbox: OutboxRepository, update: StatusUpdate) -> str:
        message = self.find(update)
        if message is None:
            self.unmatched.append(update)
            return "unmatched"
        if update.scope is not None and not update.scope.admits(message):
            return "foreign"  # signed by an account that did not send it: never applied
        if (message["id"], update.dedupe_key) in self.seen:
            return "duplicate"
        self.seen.add((message["id"], update.dedupe_key))
        outcome = await _outcome(outbox, message, update)
        self.events.append(_event_values(message, update, outcome))
        if outcome == "applied":
            values = _status_values(message, update)
            message.update(values)
            self.changes.setdefault(message["id"], {}).update(values)
            self.by_sid.setdefault(message["provider_message_id"], message)
        return outcome


def _event_values(message: Mapping[str, Any], update: StatusUpdate, outcome: str) -> dict[str, Any]:
    """The history's record of an update; one not applied has `toStatus` null and the reason,
    so the history never shows a transition that did not happen."""
    applied = outcome == "applied"
    data = {"providerStatus": update.provider_status, **_error_data(update.error)}
    if not applied:
        data["ignored"] = _IGNORED_REASONS[outcome]
    return event_row(
        message["id"],
        "provider_status",
        update.received_at,
        from_status=message["status"],
        to_status=update.status.value if applied else None,
        data=data,
        dedupe_key=update.dedupe_key,
    )


_IGNORED_REASONS = {
    "ignored": "would move the status backwards",
    "stale": "about a send that a resend replaced",
}


async def _outcome(
    outbox: OutboxRepository, message: Mapping[str, Any], update: StatusUpdate
) -> str:
    if not moves_forward(Status(message["status"]), update.status):
        return "ignored"
    if not await _about_current_attempt(outbox, message, update.provider_message_id):
        return "stale"
    return "applied"


async def _about_current_attempt(
    outbox: OutboxRepository, message: Mapping[str, Any], sid: str
) -> bool:
    """True when `sid` is the message's current send (not one replaced by a resend)."""
    if message["provider_message_id"] is not None:
        return bool(message["provider_message_id"] == sid)
    if message["status"] != Status.SENDING.value:
        return False
    if not message["resend_count"]:
        return True
    earlier = {e.data.get("previousMessageId") for e in await outbox.events(message["id"])}
    return sid not in earlier


def _status_values(row: Mapping[str, Any], update: StatusUpdate) -> dict[str, Any]:
    values: dict[str, Any] = {
        "status": update.status.value,
        "updated_at": update.received_at,
        "provider_message_id": row["provider_message_id"] or update.provider_message_id,
        "lease_owner": None,
        "lease_expires_at": None,
        "needs_reconcile": 0,
    }
    if row["sent_at"] is None:
        values["sent_at"] = update.received_at
    if update.status is Status.DELIVERED:
        values["delivered_at"] = update.received_at
    if update.error is not None:
        values.update(error_columns(update.error))
    # A column set to the value it holds still costs its indexes an update: leave it out.
    return {name: value for name, value in values.items() if name not in row or row[name] != value}


def _error_data(error: ProviderError | None) -> dict[str, Any]:
    if error is None:
        return {}
    return {"errorCode": error.code, "errorMessage": error.message}


async def _park_unmatched(connection: Any, update: StatusUpdate) -> None:
    """Keep a callback that raced ahead of the send's own record; applied once the id is known."""
    payload = {
        "status": update.status.value,
        "providerStatus": update.provider_status,
        "error": _error_data(update.error),
        "errorMoreInfo": update.error.more_info if update.error else None,
        "scope": _scope_data(update.scope),
    }
    try:
        async with connection.begin_nested():
            await connection.execute(
                insert(unmatched_callbacks).values(
                    provider_message_id=update.provider_message_id,
                    dedupe_key=update.dedupe_key,
                    received_at=update.received_at,
                    payload=payload,
                )
            )
    except IntegrityError:
        return


async def has_parked_updates(connection: AsyncConnection, provider_message_id: str) -> bool:
    """True when a callback for `provider_message_id` arrived before its send was recorded."""
    found = await connection.scalar(
        select(unmatched_callbacks.c.id)
        .where(unmatched_callbacks.c.provider_message_id == provider_message_id)
        .limit(1)
    )
    return found is not None


async def apply_parked_updates(db: Database, provider_message_id: str) -> int:
    """Apply callbacks that arrived before the provider id was recorded, in the transaction
    that takes them off the shelf; returns how many."""
    async with db.transaction() as connection:
        rows = (
            (
                await connection.execute(
                    select(unmatched_callbacks)
                    .where(unmatched_callbacks.c.provider_message_id == provider_message_id)
                    .order_by(unmatched_callbacks.c.id)
                )
            )
            .mappings()
            .all()
        )
        await connection.execute(
            delete(unmatched_callbacks).where(
                unmatched_callbacks.c.provider_message_id == provider_message_id
            )
        )
        results = await write_status_updates(connection, [_parked_update(p) for p in rows])
    for result in results:
        metrics.STATUS_UPDATES.labels(result).inc()
    return len(rows)


def _parked_update(parked: RowMapping) -> StatusUpdate:
    payload = parked["payload"]
    error_data = payload.get("error") or {}
    error = None
    if error_data:
        error = ProviderError(
            message=error_data.get("errorMessage") or "",
            code=error_data.get("errorCode"),
            more_info=payload.get("errorMoreInfo"),
        )
    return StatusUpdate(
        provider_message_id=parked["provider_message_id"],
        status=Status(payload["status"]),
        provider_status=payload["providerStatus"],
        dedupe_key=parked["dedupe_key"],
        received_at=parked["received_at"],
        error=error,
        scope=_scope_from(payload.get("scope")),
    )


def _scope_data(scope: MessageScope | None) -> dict[str, Any] | None:
    if scope is None:
        return None
    data = {"platform": scope.platform, "tenantIds": sorted(scope.tenant_ids)}
    return data | {"provider": scope.provider}


def _scope_from(data: dict[str, Any] | None) -> MessageScope | None:
    if data is None:
        return None
    tenant_ids = frozenset(data.get("tenantIds") or ())
    return MessageScope(bool(data.get("platform")), tenant_ids, data.get("provider"))


def result_event_data(result: SendResult) -> dict[str, Any]:
    """What an attempt's event records about the provider's answer."""
    data: dict[str, Any] = {"outcome": result.outcome.value}
    if result.provider_message_id:
        data["providerMessageId"] = result.provider_message_id
    if result.error is not None:
        data.update(_error_data(result.error))
    if result.retry_after_seconds is not None:
        data["retryAfterSeconds"] = result.retry_after_seconds
    return data
