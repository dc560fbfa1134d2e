"""Sending one SMS end to end through the API, dispatcher, Twilio adapter and simulator."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from tests.integration.conftest import LiveApp

StartApp = Callable[..., Awaitable[LiveApp]]


async def test_send_is_accepted_then_sent_then_delivered(start_app: StartApp) -> None:
    app = await start_app()
    response = await app.send(to="+15005550006", message="Hello")
    assert response.status_code == 202, response.text
    entry = response.json()
    assert entry["status"] == "pending"
    assert entry["recipientPhoneNumber"] == "+15005550006"
    delivered = await app.wait_for_status(entry["outboxId"], "delivered")
    assert delivered["messageId"].startswith("SM")
    kinds = [event["kind"] for event in delivered["events"]]
    assert kinds[:3] == ["created", "attempt_started", "provider_accepted"]
    assert delivered["timestamps"]["deliveredAt"] is not None
    assert len(app.simulator.state.accepted) == 1
