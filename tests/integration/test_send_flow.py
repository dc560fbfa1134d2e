"""Sending SMS end to end: API → outbox → dispatcher → Twilio adapter → simulator → webhook."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from smsrelay.providers.twilio.signature import compute_signature
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
    statuses = [
        e["data"].get("providerStatus")
        for e in delivered["events"]
        if e["kind"] == "provider_status"
    ]
    assert statuses[-1] == "delivered"
    assert delivered["timestamps"]["sentAt"] is not None
    assert delivered["timestamps"]["deliveredAt"] is not None
    (accepted,) = app.simulator.state.accepted
    assert accepted.sid == delivered["messageId"]
    assert accepted.body == "Hello" and accepted.to == "+15005550006"
    assert accepted.status_callback is not None
    assert accepted.status_callback.startswith(f"{app.url}/api/webhooks/twilio/status")


@pytest.mark.parametrize(
    ("to", "code"),
    [
        ("+15005550001", 21211),
        ("+15005550002", 21612),
        ("+15005550003", 21408),
        ("+15005550009", 21614),
        ("+15005550004", 21610),
        ("+15005550007", 21610),
        ("+15005550008", 21612),
    ],
)
async def test_magic_numbers_fail_with_twilios_error_and_no_retry(
    start_app: StartApp, to: str, code: int
) -> None:
    app = await start_app()
    entry = (await app.send(to=to, message="Hello")).json()
    failed = await app.wait_for_status(entry["outboxId"], "failed")
    error = failed["errorDetails"]
    assert error["code"] == code
    assert error["message"]
    assert error["moreInfo"] == f"https://www.twilio.com/docs/errors/{code}"
    assert "details" in error
    assert failed["retryCount"] == 0
    await asyncio.sleep(0.3)
    assert len(app.simulator.state.requests) == 1
    assert app.simulator.state.accepted == []


async def test_undeliverable_number_ends_undelivered_with_carrier_error(
    start_app: StartApp,
) -> None:
    app = await start_app()
    entry = (await app.send(to="+14155553003", message="Hello")).json()
    final = await app.wait_for_status(entry["outboxId"], "undelivered")
    assert final["errorDetails"]["code"] == 30003
    assert final["messageId"].startswith("SM")


async def _post_status(
    app: LiveApp, params: dict[str, str], query: str = "", token: str | None = None
) -> int:
    url = f"{app.url}/api/webhooks/twilio/status{query}"
    signature = compute_signature(url, params, token or app.simulator.auth_token)
    response = await app.client.post(url, data=params, headers={"X-Twilio-Signature": signature})
    return response.status_code


async def test_webhook_rejects_bad_signatures(start_app: StartApp) -> None:
    app = await start_app()
    params = {"MessageSid": "SM" + "1" * 32, "MessageStatus": "delivered"}
    assert await _post_status(app, params, token="wrong-token") == 403
    response = await app.client.post("/api/webhooks/twilio/status", data=params)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "invalid_signature"


async def test_late_and_duplicate_callbacks_never_move_status_back(start_app: StartApp) -> None:
    app = await start_app()
    entry = (await app.send(to="+15005550006", message="Hello")).json()
    delivered = await app.wait_for_status(entry["outboxId"], "delivered")
    sid = delivered["messageId"]
    for status in ("sent", "queued", "undelivered", "delivered") * 2:
        assert await _post_status(app, {"MessageSid": sid, "MessageStatus": status}) == 200
    after = await app.wait_for_status(entry["outboxId"], "delivered")
    assert after["errorDetails"] is None
    assert after["timestamps"] == delivered["timestamps"]
    # Each distinct late callback is recorded once as history; the repeats are dropped.
    late = after["events"][len(delivered["events"]) :]
    assert len(late) == 4
    assert all(e["toStatus"] is None and e["data"]["ignored"] for e in late)


async def test_callback_found_by_sid_without_outbox_id(start_app: StartApp) -> None:
    app = await start_app(simulator_step_delay=30.0)
    entry = (await app.send(to="+15005550006", message="Hello")).json()
    sent = await app.wait_for_status(entry["outboxId"], "sent")
    params = {"MessageSid": sent["messageId"], "MessageStatus": "delivered"}
    assert await _post_status(app, params) == 200
    await app.wait_for_status(entry["outboxId"], "delivered")


async def test_resend_through_the_api_until_the_cap(start_app: StartApp) -> None:
    app = await start_app(resend_cap=2)
    entry = (await app.send(to="+15005550002", message="Hello")).json()
    await app.wait_for_status(entry["outboxId"], "failed")
    for _ in range(2):
        response = await app.client.post(
            "/api/sms/outbox/resend", headers=app.auth(), json={"outboxId": entry["outboxId"]}
        )
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "pending"
        await app.wait_for_status(entry["outboxId"], "failed")
    before = (
        await app.client.get(f"/api/sms/outbox/{entry['outboxId']}", headers=app.auth())
    ).json()
    refused = await app.client.post(
        "/api/sms/outbox/resend", headers=app.auth(), json={"outboxId": entry["outboxId"]}
    )
    assert refused.status_code == 409
    assert "cap is 2" in refused.json()["error"]["message"]
    after = (
        await app.client.get(f"/api/sms/outbox/{entry['outboxId']}", headers=app.auth())
    ).json()
    assert after == before
    assert len(app.simulator.state.requests) == 3
    missing = await app.client.post(
        "/api/sms/outbox/resend", headers=app.auth(), json={"outboxId": "sms_nope"}
    )
    assert missing.status_code == 404
    empty = await app.client.post("/api/sms/outbox/resend", headers=app.auth(), json={})
    assert empty.status_code == 422 and "outboxId" in empty.json()["error"]["message"]


async def test_metrics_count_submissions_attempts_and_callbacks(start_app: StartApp) -> None:
    app = await start_app()
    before = (await app.client.get("/metrics")).text
    entry = (await app.send(to="+15005550006", message="Hello")).json()
    await app.wait_for_status(entry["outboxId"], "delivered")
    text = (await app.client.get("/metrics")).text
    assert 'smsrelay_send_attempts_total{outcome="accepted",provider="simulator"}' in text
    assert 'smsrelay_status_updates_total{result="applied"}' in text
    assert _value(text, 'smsrelay_messages_submitted_total{status="pending"}') == (
        _value(before, 'smsrelay_messages_submitted_total{status="pending"}') + 1
    )


def _value(text: str, series: str) -> float:
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.split()[-1])
    return 0.0
