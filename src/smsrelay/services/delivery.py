"""Recording what happened to a message: send attempts and provider status updates."""

from __future__ import annotations

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
from smsrelay.store.outbox import OutboxRepository
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

    def admits(self, row: RowMapping) -> bool:
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
        return {
            "error_code": None,
            "error_message": None,
            "error_more_info": None,
            "error_details": None,
        }
    return {
        "error_code": None if error.code is None else str(error.code),
        "error_message": error.message,
        "error_more_info": error.more_info,
        "error_details": error.details,
    }


async def apply_status_update(db: Database, update: StatusUpdate) -> str:
    """Apply an update if it moves forward: applied|ignored|stale|duplicate|unmatched."""
    async with db.transaction() as connection:
        outbox = OutboxRepository(connection)
        row = await _find_message(outbox, update)
        if row is not None and update.scope is not None and not update.scope.admits(row):
            result = "foreign"  # signed by an account that did not send it: never applied
        elif row is None:
            await _park_unmatched(connection, update)
            result = "unmatched"
        else:
            result = await _apply_to_row(outbox, row, update)
    metrics.STATUS_UPDATES.labels(result).inc()
    return result


async def _find_message(outbox: OutboxRepository, update: StatusUpdate) -> RowMapping | None:
    if update.outbox_id:
        row = await outbox.get_row(update.outbox_id)
        known = row["provider_message_id"] if row else None
        if row is not None and known in (None, update.provider_message_id):
            return row
    return await outbox.get_by_provider_id(update.provider_message_id)


async def _apply_to_row(outbox: OutboxRepository, row: RowMapping, update: StatusUpdate) -> str:
    """Record the update once in the history; change the status only when it moves forward.

    An update that is not applied is recorded with `toStatus` null and the reason, so the
    history never shows a transition that did not happen.
    """
    current = Status(row["status"])
    outcome = await _outcome(outbox, row, current, update)
    applied = outcome == "applied"
    data = {"providerStatus": update.provider_status, **_error_data(update.error)}
    if not applied:
        data["ignored"] = _IGNORED_REASONS[outcome]
    fresh = await outbox.add_event(
        row["id"],
        "provider_status",
        update.received_at,
        from_status=current.value,
        to_status=update.status.value if applied else None,
        data=data,
        dedupe_key=update.dedupe_key,
    )
    if not fresh:
        return "duplicate"
    if applied:
        await outbox.update(row["id"], **_status_values(row, update))
    return outcome


_IGNORED_REASONS = {
    "ignored": "would move the status backwards",
    "stale": "about a send that a resend replaced",
}


async def _outcome(
    outbox: OutboxRepository, row: RowMapping, current: Status, update: StatusUpdate
) -> str:
    if not moves_forward(current, update.status):
        return "ignored"
    if not await _about_current_attempt(outbox, row, update.provider_message_id):
        return "stale"
    return "applied"


async def _about_current_attempt(outbox: OutboxRepository, row: RowMapping, sid: str) -> bool:
    """True when `sid` is the message's current send (not one replaced by a resend)."""
    if row["provider_message_id"] is not None:
        return bool(row["provider_message_id"] == sid)
    if row["status"] != Status.SENDING.value:
        return False
    if not row["resend_count"]:
        return True
    earlier = {e.data.get("previousMessageId") for e in await outbox.events(row["id"])}
    return sid not in earlier


def _status_values(row: RowMapping, update: StatusUpdate) -> dict[str, Any]:
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
    return values


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
    """Apply callbacks that arrived before the provider id was recorded; returns how many."""
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
    for parked in rows:
        await apply_status_update(db, _parked_update(parked))
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
