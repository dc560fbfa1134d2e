"""The simulator's configuration: credentials, status timing, fault knobs and delivery outcomes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, Literal

from smsrelay.providers.simulator.faults import Faults

# Development credentials, valid only against the simulator. The SID has Twilio's shape
# (AC + 32 hex digits: shared/vectors/twilio_messages_schema.json, AccountSid pattern).
DEFAULT_ACCOUNT_SID: Final = "AC" + "0" * 32
DEFAULT_AUTH_TOKEN: Final = "simulator-dev-auth-token"  # noqa: S105  # public dev credential

FailureStatus = Literal["undelivered", "failed"]


@dataclass(frozen=True, slots=True)
class DeliveryFailure:
    """Messages whose To ends with `suffix` end `status` with `error_code`."""

    suffix: str
    status: FailureStatus
    error_code: int


# Default failing recipients: the suffix spells the error code's last digits.
# Codes: shared/vectors/twilio_errors.json (30003 unreachable handset, 30008 unknown error).
DEFAULT_DELIVERY_FAILURES: Final = (
    DeliveryFailure("3003", "undelivered", 30003),
    DeliveryFailure("3008", "failed", 30008),
)


@dataclass
class SimulatorConfig:
    """Everything a simulator run is configured with."""

    account_sid: str = DEFAULT_ACCOUNT_SID
    auth_token: str = DEFAULT_AUTH_TOKEN
    faults: Faults = field(default_factory=Faults)
    step_delay: float = 0.05
    delivery_failures: tuple[DeliveryFailure, ...] = DEFAULT_DELIVERY_FAILURES
    callback_timeout: float = 5.0

    def failure_for(self, to: str) -> DeliveryFailure | None:
        """The configured failure for recipient `to`, if any."""
        return next((f for f in self.delivery_failures if to.endswith(f.suffix)), None)
