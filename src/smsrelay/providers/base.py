"""The one interface every SMS provider implements, and the closed set of send outcomes.

Each provider package translates its own failures (HTTP statuses, SDK exceptions, error
codes) into a `SendResult` at its boundary. Nothing outside a provider's package looks at an
HTTP status or an SDK exception type: the dispatcher asks `result.outcome` only.

Outcomes:
    ACCEPTED   the provider took the message; `provider_message_id` is set.
    RETRYABLE  definitely not sent (refused connection, 429/20429, 30001): safe to try again.
    AMBIGUOUS  may have been sent (5xx, timeout or reset after the request went out):
               never resent blindly; reconciled by asking the provider.
    PERMANENT  will not succeed unchanged (invalid number, region not enabled, ...).
    OPTED_OUT  the recipient unsubscribed at the provider (Twilio 21610): also suppresses.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable


class Outcome(enum.StrEnum):
    ACCEPTED = "accepted"
    RETRYABLE = "retryable"
    AMBIGUOUS = "ambiguous"
    PERMANENT = "permanent"
    OPTED_OUT = "opted_out"

    @property
    def retryable(self) -> bool:
        return self is Outcome.RETRYABLE


@dataclass(frozen=True, slots=True)
class ProviderError:
    """A provider's error, as the provider reported it (shape of `errorDetails`)."""

    message: str
    code: int | str | None = None
    more_info: str | None = None
    details: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class SendRequest:
    """One SMS to send. `idempotency_key` is our outbox id, for providers that honour one."""

    to: str
    body: str
    sender: str | None = None
    status_callback_url: str | None = None
    validity_seconds: int | None = None
    idempotency_key: str | None = None


@dataclass(frozen=True, slots=True)
class SendResult:
    outcome: Outcome
    provider_message_id: str | None = None
    provider_status: str | None = None
    error: ProviderError | None = None
    retry_after_seconds: float | None = None

    @property
    def accepted(self) -> bool:
        return self.outcome is Outcome.ACCEPTED


@dataclass(frozen=True, slots=True)
class ProviderMessage:
    """What the provider knows about a message it holds (fetch / list answers)."""

    provider_message_id: str
    status: str
    to: str | None = None
    body: str | None = None
    error: ProviderError | None = None
    price: str | None = None
    price_unit: str | None = None
    created_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ProviderConfigError(Exception):
    """The provider cannot be built: `missing` names the settings to set."""

    message: str
    missing: tuple[str, ...] = field(default_factory=tuple)

    def __str__(self) -> str:
        return self.message


@runtime_checkable
class Provider(Protocol):
    """An SMS provider adapter. Implementations never raise for a send failure.

    `can_look_up_messages` is False for providers whose `fetch`/`find_sent` cannot answer:
    their ambiguous attempts wait for a delivery report instead of being sent again.
    """

    name: str
    can_look_up_messages: bool

    async def send(self, request: SendRequest) -> SendResult:
        """Send one SMS and classify the result; never raises for provider failures."""
        ...

    async def fetch(self, provider_message_id: str) -> ProviderMessage | None:
        """Ask the provider about one message; None when it does not know the id."""
        ...

    async def find_sent(self, to: str, body: str, since: datetime) -> ProviderMessage | None:
        """Find a message the provider accepted for `to` with `body` since `since`."""
        ...

    async def verify(self) -> None:
        """Check the credentials; raises `ProviderConfigError` when they are wrong."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...
