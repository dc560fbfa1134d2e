"""Tenant provider accounts for tests: their own simulator (Twilio) and fake MSG91 server."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from smsrelay.providers.simulator import SimulatorServer
from tests.providers.msg91_fake import AUTH_KEY, FakeMsg91

# The tenant's own Twilio account, as the tenant's simulator knows it.
ACCOUNT_SID = "AC" + "1a" * 16
AUTH_TOKEN = "5f" * 16
SERVICE_SID = "MG" + "2b" * 16
MSG91 = {
    "authKey": AUTH_KEY,
    "senderId": "SMSRLY",
    "dltEntityId": "1201159543060917386",
    "templateId": "6650b0f2d6fc0517e64d3f72",
}


def twilio_body(**changes: str | None) -> dict[str, str | None]:
    return {"accountSid": ACCOUNT_SID, "authToken": AUTH_TOKEN, "fromNumber": "+15005550006"} | {
        name: value for name, value in changes.items()
    }


@dataclass
class Accounts:
    """The tenant's own provider servers and the settings that point smsrelay at them."""

    twilio: SimulatorServer
    msg91: FakeMsg91
    secret_keys: str

    def settings(self, **overrides: Any) -> dict[str, Any]:
        return {
            "secret_keys": self.secret_keys,
            "twilio_api_base_url": self.twilio.base_url,
            "msg91_api_base_url": self.msg91.base_url,
            **overrides,
        }
