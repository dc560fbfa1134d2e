"""The development-only manual test send: `POST /api/notifications/sms/test`."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from structlog.testing import capture_logs

from smsrelay.bootstrap import bootstrap
from smsrelay.config import load_settings
from smsrelay.providers.base import ProviderConfigError
from smsrelay.services import test_send
from smsrelay.store.tables import notification_logs
from tests.integration.conftest import Api

URL = "/api/notifications/sms/test"


async def _logs(api: Api) -> list[dict[str, Any]]:
    async with api.container.db.transaction() as connection:
        rows = (await connection.execute(select(notification_logs))).mappings().all()
    return [dict(row) for row in rows]


async def test_sends_synchronously_and_logs_a_row(api: Api) -> None:
    response = await api.client.post(URL, json={"to": "+15005550006", "message": "Test"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["providerMessageId"].startswith("SM")
    simulator = api.container.setup.simulator  # type: ignore[union-attr]
    assert simulator is not None
    assert [m.sid for m in simulator.state.accepted] == [body["providerMessageId"]]
    (row,) = await _logs(api)
    assert row["log_key"] == "manual-test-sms" and row["status"] == "sent"
    assert row["provider_message_id"] == body["providerMessageId"]


async def test_provider_rejection_is_422_logged_and_persisted(api: Api) -> None:
    with capture_logs() as events:
        response = await api.client.post(URL, json={"to": "+15005550001", "message": "Test"})
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "provider_rejected"
    assert error["details"]["providerErrorCode"] == 21211
    (row,) = await _logs(api)
    assert row["status"] == "failed" and row["error_code"] == "21211"
    (failed,) = [e for e in events if e["event"] == "notifications.sms.delivery_failed"]
    assert failed["providerErrorCode"] == 21211
    assert failed["providerMoreInfo"] == "https://www.twilio.com/docs/errors/21211"
    assert "providerDetails" in failed
    assert failed["templateKey"] == "manual-test-sms" and failed["channel"] == "sms"
    assert failed["recipient"] == "+15005550001"  # raw here; the JSON renderer masks it
    assert failed["logId"] == row["id"]


async def test_fourth_request_in_five_minutes_is_429_with_retry_after(api: Api) -> None:
    for _ in range(3):
        ok = await api.client.post(URL, json={"to": "+15005550006", "message": "Test"})
        assert ok.status_code == 200
    response = await api.client.post(URL, json={"to": "+15005550006", "message": "Test"})
    assert response.status_code == 429
    assert 250 <= int(response.headers["retry-after"]) <= 300
    assert response.json()["error"]["code"] == "rate_limited"
    assert len(await _logs(api)) == 3


async def test_bad_input_is_422_and_counts_toward_nothing_sent(api: Api) -> None:
    for body in (
        {"to": "+15005550006"},
        {"to": "12", "message": "x"},
        {"to": "+15005550006", "message": " "},
        {"to": "+1", "message": "x", "a": 1},
    ):
        response = await api.client.post(URL, json=body)
        assert response.status_code == 422, response.text
    assert await _logs(api) == []


async def test_is_not_found_in_production(database_url: str, api: Api) -> None:
    api.container.settings = load_settings(
        database_url=database_url, env="production", provider="simulator"
    )
    response = await api.client.post(URL, json={"to": "+15005550006", "message": "Test"})
    assert response.status_code == 404
    assert await _logs(api) == []


async def test_log_row_failure_is_reported_and_the_send_still_answers(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def unwritable(connection: object, row: object) -> None:
        raise OperationalError("INSERT INTO notification_logs", {}, Exception("disk full"))

    monkeypatch.setattr(test_send, "add_log", unwritable)
    with capture_logs() as events:
        response = await api.client.post(URL, json={"to": "+15005550006", "message": "Test"})
    assert response.status_code == 200
    (lost,) = [e for e in events if e["event"] == "notifications.sms.log_persist_failed"]
    assert lost["templateKey"] == "manual-test-sms" and lost["channel"] == "sms"
    assert lost["logId"] and "recipient" in lost


@pytest.mark.parametrize(
    ("env", "missing"),
    [
        (
            {"twilio_account_sid": "AC" + "1" * 32, "twilio_auth_token": "t"},
            ["TWILIO_MESSAGING_SERVICE_SID", "TWILIO_FROM_PHONE_NUMBER"],
        ),
        ({"twilio_from_phone_number": "+15005550006"}, ["TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN"]),
    ],
)
async def test_misconfigured_twilio_fails_start_naming_variables(
    database_url: str, env: dict[str, str], missing: list[str]
) -> None:
    settings = load_settings(database_url=database_url, provider="twilio", **env)
    container = bootstrap(settings)
    with capture_logs() as events, pytest.raises(ProviderConfigError) as raised:
        await container.start()
    await container.db.dispose()
    assert all(name in str(raised.value) or name in raised.value.missing for name in missing)
    (event,) = [e for e in events if e["event"] == "notifications.sms.provider_misconfigured"]
    assert event["missingVariables"] == missing
    assert event["channel"] == "sms"
