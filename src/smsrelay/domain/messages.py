"""The outbox entry as the domain sees it, independent of storage and HTTP."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from smsrelay.domain.status import Status


@dataclass(frozen=True, slots=True)
class ErrorDetails:
    message: str
    code: str | None = None
    more_info: str | None = None
    details: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class MessageEvent:
    kind: str
    created_at: datetime
    from_status: str | None
    to_status: str | None
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    outbox_id: str
    tenant_id: str
    user_id: str | None
    recipient: str
    message: str
    sender_id: str | None
    provider: str
    provider_message_id: str | None
    category: str
    encoding: str
    segments: int
    cost_per_unit: str
    total_cost: str
    currency: str
    status: Status
    created_at: datetime
    sent_at: datetime | None
    last_attempt_at: datetime | None
    delivered_at: datetime | None
    scheduled_at: datetime | None
    retry_count: int
    error: ErrorDetails | None
    tags: list[str]
    custom_data: dict[str, Any]
    template_key: str | None
    events: list[MessageEvent] = field(default_factory=list)
    provider_cost: str | None = None  # what the provider billed, once it reports it
    provider_currency: str | None = None
    cost_difference: str | None = None  # provider_cost - total_cost, when both are known
