"""The `smsrelay` command line as a user runs it: tenants, settings errors, simulator, migrate."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from smsrelay.providers.simulator.config import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN
from tests.e2e.conftest import Cli, Process, Server, free_port

pytestmark = pytest.mark.e2e

SENDER_VARIABLES = ("TWILIO_MESSAGING_SERVICE_SID", "TWILIO_FROM_PHONE_NUMBER")


def test_tenants_create_prints_a_key_that_works(cli: Cli, server: Server) -> None:
    result = cli("tenants", "create", "globex")
    assert result.returncode == 0, result.stderr
    created = json.loads(result.stdout)
    assert created["tenantId"] and created["apiKey"]

    listing = server.client.get("/api/sms/outbox", headers=server.auth(created["apiKey"]))
    assert listing.status_code == 200, listing.text
    assert listing.json()["items"] == []
    wrong = server.client.get("/api/sms/outbox", headers=server.auth(created["apiKey"] + "x"))
    assert wrong.status_code == 401


def test_tenants_create_rejects_an_empty_name(cli: Cli) -> None:
    result = cli("tenants", "create", "")
    assert result.returncode != 0
    assert "NAME" in result.stderr
    assert result.stdout == ""


def test_serve_names_a_bad_database_url(cli: Cli) -> None:
    result = cli(
        "serve", "--port", str(free_port()), env={"SMSRELAY_DATABASE_URL": "mysql://x"}, timeout=15
    )
    assert result.returncode != 0
    assert "SMSRELAY_DATABASE_URL" in result.stderr


def test_serve_names_both_missing_twilio_sender_variables(cli: Cli) -> None:
    twilio_without_sender = {
        "SMSRELAY_PROVIDER": "twilio",
        "TWILIO_ACCOUNT_SID": "AC" + "1" * 32,
        "TWILIO_AUTH_TOKEN": "not-a-real-token",
        # Never reach the real Twilio, whatever the start-up checks become.
        "TWILIO_API_BASE_URL": f"http://127.0.0.1:{free_port()}",
    }
    result = cli("serve", "--port", str(free_port()), env=twilio_without_sender, timeout=15)
    assert result.returncode != 0
    for variable in SENDER_VARIABLES:
        assert variable in result.stderr

    events = [_json(line) for line in result.stderr.splitlines()]
    (misconfigured,) = [
        e for e in events if e and e.get("event") == "notifications.sms.provider_misconfigured"
    ]
    assert set(misconfigured["missingVariables"]) == set(SENDER_VARIABLES)
    assert "not-a-real-token" not in result.stderr + result.stdout


def _json(line: str) -> dict[str, Any] | None:
    try:
        value = json.loads(line)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def test_simulator_serves_the_official_twilio_sdk(
    start_process: Callable[..., Process],
) -> None:
    simulator = start_process("simulator", "--port", str(free_port()))
    simulator.wait_until(lambda: "listening on" in simulator.stdout)
    match = re.search(r"listening on (http://\S+)", simulator.stdout)
    assert match is not None, simulator.describe()
    assert DEFAULT_ACCOUNT_SID in simulator.stdout
    assert DEFAULT_AUTH_TOKEN in simulator.stdout

    client = Client(
        DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN, http_client=TwilioHttpClient(timeout=10)
    )
    client.api.base_url = match.group(1)
    created = client.messages.create(to="+15005550006", from_="+15005550006", body="Hello")
    assert created.sid.startswith("SM")
    assert created.status in ("accepted", "queued", "sending", "sent", "delivered")

    fetched = client.messages(created.sid).fetch()
    assert fetched.sid == created.sid
    assert fetched.to == "+15005550006"
    assert fetched.body == "Hello"


def test_migrate_exits_zero_on_an_existing_database(cli: Cli, server: Server) -> None:
    # `server` has already created (SQLite) or migrated (PostgreSQL) the session's database.
    result = cli("migrate")
    assert result.returncode == 0, result.stderr
    assert "up to date" in result.stderr
