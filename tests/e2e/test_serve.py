"""`smsrelay serve` as a real process: send, deliver, fail, document itself, stop on SIGTERM."""

from __future__ import annotations

import signal
import subprocess
from typing import Any

import pytest

from tests.e2e.conftest import STOP_SECONDS, Server, StartServer

pytestmark = pytest.mark.e2e


def test_send_is_accepted_then_delivered(server: Server, tenant: dict[str, Any]) -> None:
    key = tenant["apiKey"]
    response = server.send(key, to="+15005550006", message="Hello")
    assert response.status_code == 202, response.text
    entry = response.json()
    assert entry["tenantId"] == tenant["tenantId"]
    assert entry["recipientPhoneNumber"] == "+15005550006"
    assert entry["status"] == "pending"

    delivered = server.wait_for_status(key, entry["outboxId"], "delivered")
    assert delivered["messageId"].startswith("SM")
    assert delivered["timestamps"]["sentAt"] is not None
    assert delivered["timestamps"]["deliveredAt"] is not None
    assert delivered["errorDetails"] is None
    kinds = [event["kind"] for event in delivered["events"]]
    assert kinds[:3] == ["created", "attempt_started", "provider_accepted"]
    assert "provider_status" in kinds


def test_invalid_number_fails_with_twilios_21211(server: Server, tenant: dict[str, Any]) -> None:
    key = tenant["apiKey"]
    response = server.send(key, to="+15005550001", message="Hello")
    assert response.status_code == 202, response.text

    failed = server.wait_for_status(key, response.json()["outboxId"], "failed")
    assert failed["errorDetails"]["code"] == 21211
    assert failed["errorDetails"]["message"]
    assert failed["retryCount"] == 0


def test_send_without_api_key_is_a_json_401(server: Server) -> None:
    response = server.client.post("/api/sms/send", json={"to": "+15005550006", "message": "Hi"})
    assert response.status_code == 401
    assert set(response.json()["error"]) >= {"code", "message"}


def test_api_docs_and_openapi_are_served(server: Server) -> None:
    docs = server.client.get("/api-docs")
    assert docs.status_code == 200
    assert docs.headers["content-type"].startswith("text/html")
    assert "<html" in docs.text.lower()

    schema = server.client.get("/openapi.json")
    assert schema.status_code == 200
    assert "/api/sms/send" in schema.json()["paths"]


def test_sigterm_stops_the_server_cleanly(
    start_server: StartServer, tenant: dict[str, Any]
) -> None:
    private = start_server()
    key = tenant["apiKey"]
    entry = private.send(key, to="+15005550006", message="Before shutdown").json()
    private.wait_for_status(key, entry["outboxId"], "sent", "delivered")

    process = private.process
    assert process.popen is not None
    process.popen.send_signal(signal.SIGTERM)
    try:
        code = process.popen.wait(timeout=STOP_SECONDS)
    except subprocess.TimeoutExpired:
        pytest.fail(f"still running {STOP_SECONDS} s after SIGTERM: {process.describe()}")
    # uvicorn shuts down gracefully, then re-raises the signal it caught.
    assert code in (0, -signal.SIGTERM), process.describe()
    assert "Traceback" not in process.stderr, process.stderr
