"""Log lines of a whole flow carry no full phone number, message body, auth token or API key.

The flow: a send delivered through the simulator's signed callbacks, a send the provider refuses,
a successful and a refused test send, forged webhooks and a wrong key. Every line is captured as
rendered (structlog's JSON lines, and the standard library's records from INFO up).
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Awaitable, Callable, Iterator

import pytest
import structlog

from smsrelay.logs import configure_logging
from smsrelay.providers.simulator.config import DEFAULT_AUTH_TOKEN
from smsrelay.services.tenants import create_key, hash_key
from tests.integration.conftest import LiveApp
from tests.integration.provider_accounts import AUTH_TOKEN, MSG91, Accounts, twilio_body

StartApp = Callable[..., Awaitable[LiveApp]]
DELIVERED, REFUSED, TEST_OK, TEST_REFUSED = (
    "+15005550006",
    "+15005550001",
    "+15005550006",
    "+15005550002",
)
BODIES = {
    "send": "leak-probe A: your code is 482913",
    "refused": "leak-probe B: refused text",
    "test": "leak-probe C: manual test text",
    "test_refused": "leak-probe D: refused manual text",
    "forged": "leak-probe E: forged webhook text",
}


class Lines:
    """Everything logged while the capture is on, as rendered text lines."""

    def __init__(self, caplog: pytest.LogCaptureFixture) -> None:
        self.stream = io.StringIO()
        self.caplog = caplog

    def structured(self) -> list[str]:
        return self.stream.getvalue().splitlines()

    def standard(self) -> list[str]:
        """Each record with its message and any extra fields, as a JSON line."""
        return [json.dumps(_record_fields(r), default=repr) for r in self.caplog.records]


_PLAIN_RECORD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


def _record_fields(record: logging.LogRecord) -> dict[str, object]:
    extra = {k: v for k, v in record.__dict__.items() if k not in _PLAIN_RECORD}
    return {"logger": record.name, "message": record.getMessage(), **extra}


@pytest.fixture
def captured(caplog: pytest.LogCaptureFixture) -> Iterator[Lines]:
    """Route structlog's rendered output into memory; restore the suite's logging after."""
    lines = Lines(caplog)
    configure_logging(level="DEBUG", json=True)
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(file=lines.stream))
    caplog.set_level(logging.INFO)
    try:
        yield lines
    finally:
        configure_logging(level="INFO", json=True)


async def _run_flow(app: LiveApp) -> list[str]:
    """Exercise every logging path once; returns the secrets that were in play."""
    second_key = (await create_key(app.container.db, app.tenant_id)).api_key
    sent = (await app.send(to=DELIVERED, message=BODIES["send"])).json()
    await app.wait_for_status(sent["outboxId"], "delivered")
    refused = (await app.send(to=REFUSED, message=BODIES["refused"])).json()
    await app.wait_for_status(refused["outboxId"], "failed")
    for to, body, status in ((TEST_OK, "test", 200), (TEST_REFUSED, "test_refused", 422)):
        response = await app.client.post(
            "/api/notifications/sms/test", json={"to": to, "message": BODIES[body]}
        )
        assert response.status_code == status, response.text
    await _forge_webhooks(app)
    wrong = await app.client.get("/api/sms/outbox", headers=app.auth(second_key + "x"))
    assert wrong.status_code == 401
    return [app.api_key, second_key]


async def _forge_webhooks(app: LiveApp) -> None:
    form = {
        "MessageSid": "SM" + "1" * 32,
        "MessageStatus": "delivered",
        "SmsStatus": "received",
        "From": DELIVERED,
        "To": REFUSED,
        "Body": BODIES["forged"],
    }
    for path in ("/api/webhooks/twilio/status", "/api/webhooks/twilio/inbound"):
        response = await app.client.post(path, data=form, headers={"X-Twilio-Signature": "bad"})
        assert response.status_code in (403, 404), response.text


def _forbidden_values(app: LiveApp, api_keys: list[str]) -> dict[str, str]:
    """What must never be logged, by what it is."""
    numbers = {n.lstrip("+") for n in (DELIVERED, REFUSED, TEST_REFUSED)}
    numbers |= {m.from_.lstrip("+") for m in app.simulator.state.accepted if m.from_}
    forbidden = {f"number {n}": n for n in numbers}
    forbidden |= {f"body {name}": text for name, text in BODIES.items()}
    forbidden["auth token"] = DEFAULT_AUTH_TOKEN
    for index, key in enumerate(api_keys):
        forbidden[f"api key {index}"] = key.rsplit("_", 1)[1]
        forbidden[f"api key hash {index}"] = hash_key(key)
    return forbidden


async def test_a_whole_flow_logs_no_number_body_token_or_key(
    start_app: StartApp, captured: Lines
) -> None:
    app = await start_app()
    forbidden = _forbidden_values(app, await _run_flow(app))
    structured = captured.structured()
    events = [json.loads(line) for line in structured]  # valid JSON, line by line
    names = {event["event"] for event in events}
    assert {"notifications.sms.delivery_failed", "webhook.signature_rejected"} <= names
    assert any(event.get("recipient") == "+1******0006" for event in events)
    text = "\n".join(structured + captured.standard())
    leaks = [f"{what}: {value!r}" for what, value in forbidden.items() if value in text]
    assert not leaks, leaks
    print(f"log leaks: {len(structured)} structured + {len(captured.standard())} stdlib lines")


async def test_tenant_provider_secrets_are_never_logged(
    start_app: StartApp, accounts: Accounts, captured: Lines
) -> None:
    app = await start_app(**accounts.settings())
    wrong_token = "9e" * 16
    for body in (twilio_body(authToken=wrong_token), twilio_body()):
        await app.client.put("/api/providers/twilio", json=body, headers=app.auth())
        await app.client.post("/api/providers/twilio/verify", headers=app.auth())
    saved = await app.client.put("/api/providers/msg91", json=MSG91, headers=app.auth())
    await app.client.post("/api/providers/msg91/verify", headers=app.auth())
    sent = (await app.send(to=DELIVERED, message=BODIES["send"])).json()
    await app.wait_for_status(sent["outboxId"], "delivered")
    await _forge_webhooks(app)

    secrets = [AUTH_TOKEN, wrong_token, MSG91["authKey"], saved.json()["webhookToken"]]
    text = "\n".join(captured.structured() + captured.standard())
    assert "provider_config.verified" in text
    leaks = [secret for secret in secrets if secret in text]
    assert not leaks, leaks
