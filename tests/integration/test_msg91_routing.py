"""MSG91 wired in: +91 routed to it (fake MSG91 server), others to the simulator, its webhook."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from importlib import resources
from typing import Any

import httpx
import pytest

from smsrelay.config import load_settings
from smsrelay.domain import routing
from smsrelay.providers.base import ProviderConfigError
from smsrelay.providers.registry import build_provider
from tests.integration.conftest import Api, LiveApp
from tests.providers.msg91_fake import AUTH_KEY, FakeMsg91, running_fake_msg91

StartApp = Callable[..., Awaitable[LiveApp]]

SENDER = "SMSRLY"
DLT_ENTITY_ID = "1201159543060917386"
TEMPLATE_ID = "6650b0f2d6fc0517e64d3f72"
WEBHOOK_TOKEN = "dlr-6b2c1f0e9a7d4c3b8e5f"
INDIAN_NUMBER = "+919876543210"
US_NUMBER = "+15005550006"
MSG91_VARIABLES = ("MSG91_AUTH_KEY", "MSG91_SENDER_ID", "MSG91_DLT_ENTITY_ID", "MSG91_TEMPLATE_ID")


@pytest.fixture
async def fake_msg91() -> AsyncIterator[FakeMsg91]:
    async with running_fake_msg91() as fake:
        yield fake


def msg91_settings(fake: FakeMsg91) -> dict[str, Any]:
    return {
        "msg91_auth_key": AUTH_KEY,
        "msg91_sender_id": SENDER,
        "msg91_dlt_entity_id": DLT_ENTITY_ID,
        "msg91_template_id": TEMPLATE_ID,
        "msg91_api_base_url": fake.base_url,
        "msg91_webhook_token": WEBHOOK_TOKEN,
    }


def report(request_id: str, status: str = "1", desc: str = "Delivered") -> dict[str, Any]:
    """An MSG91 v3 delivery report (one JSON object per recipient)."""
    return {
        "requestId": request_id,
        "number": INDIAN_NUMBER.removeprefix("+"),
        "status": status,
        "desc": desc,
        "date": "2026-11-20 10:06:20",
        "senderId": SENDER,
    }


async def post_report(app: LiveApp, body: Any, token: str = WEBHOOK_TOKEN) -> httpx.Response:
    return await app.client.post(f"/api/webhooks/msg91/{token}", json=body)


def provider_events(entry: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for e in entry["events"] if e["kind"] == "provider_status"]


async def sent_through_msg91(app: LiveApp) -> dict[str, Any]:
    response = await app.send(to=INDIAN_NUMBER, message="Your OTP is 481516")
    assert response.status_code == 202, response.text
    return await app.wait_for_status(response.json()["outboxId"], "sent")


async def test_indian_numbers_go_through_msg91_and_others_through_the_simulator(
    start_app: StartApp, fake_msg91: FakeMsg91
) -> None:
    app = await start_app(**msg91_settings(fake_msg91))
    indian = await sent_through_msg91(app)
    assert indian["provider"] == "msg91"
    assert (indian["costPerUnit"], indian["currency"]) == ("0.20", "INR")
    (seen,) = fake_msg91.requests
    assert (seen.method, seen.path) == ("POST", "/api/v5/flow")
    assert seen.headers["authkey"] == AUTH_KEY
    assert seen.json["template_id"] == TEMPLATE_ID
    assert seen.json["sender"] == SENDER and len(seen.json["sender"]) == 6
    assert seen.json["recipients"] == [{"mobiles": "919876543210", "var1": "Your OTP is 481516"}]
    assert indian["messageId"] is not None and len(indian["messageId"]) == 24

    us = (await app.send(to=US_NUMBER, message="Hello")).json()
    assert us["provider"] == "simulator"
    delivered = await app.wait_for_status(us["outboxId"], "delivered")
    assert delivered["messageId"].startswith("SM")
    assert len(fake_msg91.requests) == 1
    assert [m.to for m in app.simulator.state.accepted] == [US_NUMBER]

    preview = await app.client.post(
        "/api/sms/preview", headers=app.auth(), json={"to": INDIAN_NUMBER, "message": "Hi"}
    )
    assert (preview.json()["provider"], preview.json()["currency"]) == ("msg91", "INR")


async def test_a_delivery_report_moves_the_message_to_delivered_once(
    start_app: StartApp, fake_msg91: FakeMsg91
) -> None:
    app = await start_app(**msg91_settings(fake_msg91))
    entry = await sent_through_msg91(app)

    for _ in range(2):  # MSG91 retries reports; the replay changes nothing
        response = await post_report(app, report(entry["messageId"]))
        assert response.status_code == 200, response.text
    delivered = await app.wait_for_status(entry["outboxId"], "delivered")
    (event,) = provider_events(delivered)
    assert event["toStatus"] == "delivered"
    assert event["data"]["providerStatus"] == "1"
    assert delivered["timestamps"]["deliveredAt"] is not None


async def test_a_failure_report_in_the_v2_form_records_the_reason(
    start_app: StartApp, fake_msg91: FakeMsg91
) -> None:
    app = await start_app(**msg91_settings(fake_msg91))
    entry = await sent_through_msg91(app)
    v2 = [{"requestId": entry["messageId"], "report": [report("x", "2", "Failed")]}]
    response = await app.client.post(
        f"/api/webhooks/msg91/{WEBHOOK_TOKEN}", data={"data": json.dumps(v2)}
    )
    assert response.status_code == 200, response.text
    failed = await app.wait_for_status(entry["outboxId"], "undelivered")
    assert failed["errorDetails"]["code"] == 2
    assert failed["errorDetails"]["message"] == "Failed"


async def test_a_late_sent_report_never_moves_a_delivered_message_back(
    start_app: StartApp, fake_msg91: FakeMsg91
) -> None:
    app = await start_app(**msg91_settings(fake_msg91))
    entry = await sent_through_msg91(app)
    await post_report(app, report(entry["messageId"]))
    await post_report(app, report(entry["messageId"], "2", "Failed"))
    final = await app.wait_for_status(entry["outboxId"], "delivered")
    assert final["errorDetails"] is None


async def test_the_reports_of_one_body_are_applied_together_in_their_order(
    start_app: StartApp, fake_msg91: FakeMsg91
) -> None:
    app = await start_app(**msg91_settings(fake_msg91))
    entry = await sent_through_msg91(app)
    batches = app.container.status_updates.batches
    body = [report(entry["messageId"]), report(entry["messageId"], "2", "Failed")]
    assert (await post_report(app, body)).status_code == 200
    assert app.container.status_updates.batches == batches + 1
    final = await app.wait_for_status(entry["outboxId"], "delivered")
    assert [e["toStatus"] for e in provider_events(final)] == ["delivered", None]


@pytest.mark.parametrize("token", ["wrong-token", WEBHOOK_TOKEN[:-1], WEBHOOK_TOKEN + "x", "x"])
async def test_a_wrong_token_is_answered_like_an_unknown_url(
    start_app: StartApp, fake_msg91: FakeMsg91, token: str
) -> None:
    app = await start_app(**msg91_settings(fake_msg91))
    entry = await sent_through_msg91(app)
    response = await post_report(app, report(entry["messageId"]), token=token)
    unknown = await app.client.post("/api/webhooks/no-such-provider/x", json={})
    assert response.status_code == 404
    assert response.json() == unknown.json()
    after = await app.wait_for_status(entry["outboxId"], "sent")
    assert provider_events(after) == []


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"{not json", 400),
        (b"42", 422),
        (b"[]", 422),
        (b'{"status": "1"}', 422),
        (b'{"requestId": "abc"}', 422),
        (b'{"requestId": "abc", "status": "1", "date": "yesterday"}', 422),
        (json.dumps({"requestId": "a" * 65, "status": "1"}).encode(), 422),
    ],
)
async def test_garbage_is_refused_with_a_json_error(
    start_app: StartApp, fake_msg91: FakeMsg91, body: bytes, status: int
) -> None:
    app = await start_app(**msg91_settings(fake_msg91))
    response = await app.client.post(
        f"/api/webhooks/msg91/{WEBHOOK_TOKEN}",
        content=body,
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == status, response.text
    assert set(response.json()["error"]) == {"code", "message", "details"}


async def test_the_webhook_is_not_there_without_msg91(api: Api) -> None:
    response = await api.client.post(f"/api/webhooks/msg91/{WEBHOOK_TOKEN}", json=report("r1"))
    assert response.status_code == 404


async def test_without_msg91_indian_numbers_use_the_main_provider(api: Api) -> None:
    entry = (await api.send(to=INDIAN_NUMBER, message="Hello")).json()
    assert entry["provider"] == "simulator"


async def test_choosing_msg91_without_its_settings_names_every_missing_variable(
    database_url: str,
) -> None:
    settings = load_settings(database_url=database_url, provider="msg91")
    with pytest.raises(ProviderConfigError) as caught:
        await build_provider(settings.effective_provider, settings)
    assert caught.value.missing == MSG91_VARIABLES
    assert all(name in str(caught.value) for name in MSG91_VARIABLES)


async def test_a_malformed_msg91_setting_is_named(database_url: str, fake_msg91: FakeMsg91) -> None:
    overrides = msg91_settings(fake_msg91) | {"msg91_sender_id": "SMSRL"}
    settings = load_settings(database_url=database_url, provider="msg91", **overrides)
    with pytest.raises(ProviderConfigError) as caught:
        await build_provider("msg91", settings)
    assert caught.value.missing == ("MSG91_SENDER_ID",)


def test_the_routing_table_agrees_with_the_sender_rules() -> None:
    data = resources.files("smsrelay.domain").joinpath("data", "senders.json").read_text("utf-8")
    routed = {c["country"]: c["route"] for c in json.loads(data)["countries"] if c.get("route")}
    assert routed == dict(routing.ROUTES)


def test_routes_need_their_provider_configured() -> None:
    assert routing.routes_for({"simulator"}) == {}
    assert routing.routes_for({"simulator", "msg91"}) == {"IN": "msg91"}
