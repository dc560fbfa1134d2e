"""A Twilio-compatible SMS simulator: the default provider in development and in tests.

It serves Twilio API 2010-04-01 (`Messages.json` create/list, `Messages/{Sid}.json`,
`Accounts/{Sid}.json`) so the real Twilio adapter talks to it unchanged, honours Twilio's
magic test numbers, posts signed status callbacks and injects faults on demand.
"""

from smsrelay.providers.simulator.config import (
    DEFAULT_ACCOUNT_SID,
    DEFAULT_AUTH_TOKEN,
    DEFAULT_DELIVERY_FAILURES,
    DeliveryFailure,
    SimulatorConfig,
)
from smsrelay.providers.simulator.faults import Faults
from smsrelay.providers.simulator.server import SimulatorServer, run_simulator
from smsrelay.providers.simulator.state import (
    CallbackRecord,
    CreateRequest,
    SimulatedMessage,
    SimulatorState,
)

__all__ = [
    "DEFAULT_ACCOUNT_SID",
    "DEFAULT_AUTH_TOKEN",
    "DEFAULT_DELIVERY_FAILURES",
    "CallbackRecord",
    "CreateRequest",
    "DeliveryFailure",
    "Faults",
    "SimulatedMessage",
    "SimulatorConfig",
    "SimulatorServer",
    "SimulatorState",
    "run_simulator",
]
