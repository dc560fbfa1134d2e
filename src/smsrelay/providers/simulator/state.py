"""What the simulator has seen: every create request, every accepted message, every callback."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime


def utc_now() -> datetime:
    return datetime.now(UTC)


def new_message_sid() -> str:
    """A message SID in Twilio's shape: SM + 32 hex digits."""
    return "SM" + secrets.token_hex(16)


@dataclass
class SimulatedMessage:
    """A message the simulator accepted, as it stands now."""

    sid: str
    account_sid: str
    to: str
    from_: str | None
    messaging_service_sid: str | None
    body: str
    status_callback: str | None = None
    validity_period: int | None = None
    status: str = "queued"
    error_code: int | None = None
    received_at: datetime = field(default_factory=utc_now)
    updated_at: datetime = field(default_factory=utc_now)
    price: str | None = None


@dataclass(frozen=True, slots=True)
class CreateRequest:
    """One POST to Messages.json, accepted or not; `http_status` is what was answered."""

    params: dict[str, str]
    http_status: int
    error_code: int | None = None
    sid: str | None = None
    received_at: datetime = field(default_factory=utc_now)
    held: bool = False  # the answer was held back by the timeout fault

    @property
    def accepted(self) -> bool:
        return self.sid is not None


@dataclass(frozen=True, slots=True)
class CallbackRecord:
    """One status callback post; `http_status` is None when the post itself failed."""

    url: str
    params: dict[str, str]
    idempotency_token: str
    http_status: int | None
    sent_at: datetime = field(default_factory=utc_now)


@dataclass
class SimulatorState:
    """In-memory record of a simulator run, for inspection by tests.

    `accepted` counts the messages the simulator took (what exactly-once tests count),
    `requests` every authenticated create request, refused ones included (a 401 is not
    recorded), `callbacks` every status callback post.
    """

    accepted: list[SimulatedMessage] = field(default_factory=list)
    requests: list[CreateRequest] = field(default_factory=list)
    callbacks: list[CallbackRecord] = field(default_factory=list)
    _by_sid: dict[str, SimulatedMessage] = field(default_factory=dict, repr=False)

    def accept(self, message: SimulatedMessage) -> None:
        self.accepted.append(message)
        self._by_sid[message.sid] = message

    def get(self, sid: str) -> SimulatedMessage | None:
        return self._by_sid.get(sid)

    def accepted_for(self, to: str) -> list[SimulatedMessage]:
        """The accepted messages addressed to `to`, oldest first."""
        return [m for m in self.accepted if m.to == to]

    def clear(self) -> None:
        self.accepted.clear()
        self.requests.clear()
        self.callbacks.clear()
        self._by_sid.clear()
