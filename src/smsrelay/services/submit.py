"""Submitting one SMS: validate, normalise, price, and write it to the outbox."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from smsrelay.domain import phones, pricing
from smsrelay.domain.ids import new_id
from smsrelay.domain.messages import OutboxEntry
from smsrelay.domain.segments import analyze
from smsrelay.domain.status import Status
from smsrelay.services.errors import InvalidRequest
from smsrelay.store.database import Database
from smsrelay.store.outbox import OutboxRepository, to_entry


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the tenant and the API key acting for it."""

    tenant_id: str
    key_id: str | None


@dataclass(frozen=True, slots=True)
class SubmitPolicy:
    """Deployment-wide rules for new messages."""

    provider: str
    default_region: str | None = None
    max_characters: int = 1600


@dataclass(frozen=True, slots=True)
class NewMessage:
    to: str
    message: str
    sender_id: str | None = None
    category: str = "transactional"
    tags: list[str] = field(default_factory=list)
    custom_data: dict[str, Any] = field(default_factory=dict)
    template_key: str | None = None
    scheduled_at: datetime | None = None
    validity_seconds: int | None = None


def _utcnow() -> datetime:
    return datetime.now(UTC)


async def submit_message(
    db: Database,
    policy: SubmitPolicy,
    principal: Principal,
    new: NewMessage,
    clock: Callable[[], datetime] = _utcnow,
) -> OutboxEntry:
    """Validate and store one message as `pending`; the dispatcher sends it."""
    now = clock()
    row = build_row(policy, principal, new, now)
    async with db.transaction() as connection:
        outbox = OutboxRepository(connection)
        await outbox.add(row)
        await outbox.add_event(row["id"], "created", now, to_status=Status.PENDING.value)
        stored = await outbox.get_row(row["id"])
        events = await outbox.events(row["id"])
    assert stored is not None
    return to_entry(stored, events)


def build_row(
    policy: SubmitPolicy, principal: Principal, new: NewMessage, now: datetime
) -> dict[str, Any]:
    """The outbox row for `new`, or `InvalidRequest` naming the field at fault."""
    number = _number(new.to, policy.default_region)
    body = _body(new.message, policy.max_characters)
    segments = analyze(body)
    price = pricing.price_for(policy.provider, number.region)
    scheduled = _scheduled(new.scheduled_at, now)
    return {
        "id": new_id("sms"),
        "tenant_id": principal.tenant_id,
        "user_id": principal.key_id,
        "recipient": number.e164,
        "body": body,
        "sender_id": new.sender_id,
        "provider": policy.provider,
        "category": new.category,
        "encoding": segments.encoding,
        "segments": segments.segments,
        "cost_per_unit": str(price.per_segment),
        "total_cost": str(pricing.total_cost(price, segments.segments)),
        "currency": price.currency,
        "status": Status.PENDING.value,
        "created_at": now,
        "updated_at": now,
        "scheduled_at": scheduled,
        "next_attempt_at": scheduled or now,
        "expires_at": _expiry(new.validity_seconds, scheduled or now),
        "tags": list(dict.fromkeys(new.tags)),
        "custom_data": new.custom_data,
        "template_key": new.template_key,
        "attempt_count": 0,
        "retry_count": 0,
        "needs_reconcile": 0,
    }


def _number(raw: str, default_region: str | None) -> phones.PhoneNumber:
    try:
        return phones.normalize(raw, default_region)
    except phones.InvalidPhoneNumber as exc:
        raise InvalidRequest("to", str(exc)) from None


def _body(message: str, limit: int) -> str:
    if not message.strip():
        raise InvalidRequest("message", "must not be empty")
    length = len(message.encode("utf-16-le")) // 2
    if length > limit:
        raise InvalidRequest(
            "message",
            f"is {length} characters; the limit is {limit}. Shorten it or split it.",
            {"limit": limit, "length": length},
        )
    return message


def _scheduled(scheduled_at: datetime | None, now: datetime) -> datetime | None:
    if scheduled_at is None:
        return None
    if scheduled_at.tzinfo is None:
        raise InvalidRequest("scheduledAt", "needs a UTC offset, e.g. 2026-01-01T09:00:00+00:00")
    return max(scheduled_at.astimezone(UTC), now)


def _expiry(validity_seconds: int | None, start: datetime) -> datetime | None:
    if validity_seconds is None:
        return None
    return start + timedelta(seconds=validity_seconds)
