"""An in-memory provider for tests and benchmarks: scripted outcomes, recorded requests."""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime

from smsrelay.providers.base import (
    Outcome,
    ProviderError,
    ProviderMessage,
    SendRequest,
    SendResult,
)


@dataclass
class FakeProvider:
    """Answers each send with the next scripted result (default: accepted).

    A scripted AMBIGUOUS result with `delivered_anyway=True` in `ambiguous_sent` records the
    message as accepted at the provider too, as a real timeout after acceptance would.
    """

    name: str = "fake"
    can_look_up_messages: bool = True
    latency: float = 0.0
    script: deque[SendResult] = field(default_factory=deque)
    ambiguous_sent: bool = True
    requests: list[SendRequest] = field(default_factory=list)
    accepted: dict[str, ProviderMessage] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=itertools.count)

    def then(self, *results: SendResult) -> FakeProvider:
        self.script.extend(results)
        return self

    async def send(self, request: SendRequest) -> SendResult:
        self.requests.append(request)
        if self.latency:
            await asyncio.sleep(self.latency)
        result = self.script.popleft() if self.script else SendResult(Outcome.ACCEPTED)
        if result.outcome is Outcome.ACCEPTED or (
            result.outcome is Outcome.AMBIGUOUS and self.ambiguous_sent
        ):
            sid = result.provider_message_id or f"FK{next(self._ids):032d}"
            self.accepted[sid] = ProviderMessage(
                sid, "sent", to=request.to, body=request.body, created_at=datetime.now(UTC)
            )
            if result.outcome is Outcome.ACCEPTED:
                return SendResult(Outcome.ACCEPTED, provider_message_id=sid)
        return result

    async def fetch(self, provider_message_id: str) -> ProviderMessage | None:
        return self.accepted.get(provider_message_id)

    async def find_sent(self, to: str, body: str, since: datetime) -> ProviderMessage | None:
        return next((m for m in self.accepted.values() if m.to == to and m.body == body), None)

    async def verify(self) -> None:
        return None

    async def close(self) -> None:
        return None

    def report(
        self,
        sid: str,
        status: str,
        error: ProviderError | None = None,
        price: str | None = None,
        price_unit: str | None = None,
    ) -> None:
        """Change what `fetch` says about a message (as a carrier receipt would), e.g. the
        price billed as Twilio reports it ("-0.00790", "USD")."""
        message = self.accepted[sid]
        self.accepted[sid] = ProviderMessage(
            sid,
            status,
            to=message.to,
            body=message.body,
            error=error,
            price=price,
            price_unit=price_unit,
        )
