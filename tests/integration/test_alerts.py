"""Alerts: settings checked at save, low-balance and failed-SMS alerts once, delivered signed."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from typing import Any

import httpx
import pytest
from aiohttp import web
from aiosmtpd.controller import Controller
from sqlalchemy import select

from smsrelay.api.app import create_app
from smsrelay.bootstrap import Container, bootstrap
from smsrelay.config import load_settings
from smsrelay.services import balances
from smsrelay.services.alerts import (
    ALERT_ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    AlertNetwork,
    sign,
)
from smsrelay.services.consent import encode_cursor
from smsrelay.services.secrets import generate_key
from smsrelay.services.tenants import create_key, create_tenant
from smsrelay.store.database import Database
from smsrelay.store.tables import alerts
from tests.integration.conftest import Api, LiveApp, free_socket
from tests.integration.test_security import dump_database

FAILING = "+15005550001"  # the simulator refuses it with 21211: failed, no provider id
LOCAL = AlertNetwork(allow_http=True, allow_loopback_for_tests=True)


# -- local receivers -------------------------------------------------------------------------


@dataclass
class Hook:
    """A local aiohttp server that records alert POSTs and answers `statuses` in turn."""

    url: str = ""
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append((dict(request.headers), await request.read()))
        return web.Response(status=self.statuses.pop(0) if self.statuses else 204)


@pytest.fixture
async def hook() -> AsyncIterator[Hook]:
    found = Hook()
    app = web.Application()
    app.router.add_post("/hook", found.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    sock = free_socket()
    await web.SockSite(runner, sock).start()
    found.url = f"http://127.0.0.1:{sock.getsockname()[1]}/hook"
    yield found
    await runner.cleanup()


class Inbox:
    """aiosmtpd handler keeping every message it is given."""

    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"


@pytest.fixture
def smtp() -> Any:
    inbox = Inbox()
    sock = free_socket()
    port = sock.getsockname()[1]
    sock.close()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, f"smtp://127.0.0.1:{port}"
    controller.stop()


@pytest.fixture
async def start_api(database_url: str, db: Database) -> AsyncIterator[Callable[..., Any]]:
    """The app in-process (no background loops) on settings of the test's choosing."""
    opened: list[tuple[httpx.AsyncClient, Container]] = []

    async def start(**overrides: Any) -> Api:
        settings = load_settings(
            database_url=database_url, public_url="http://testserver", **overrides
        )
        container = bootstrap(settings)
        await container.start(dispatch=False)
        app = create_app(container, manage=False)
        transport = httpx.ASGITransport(app=app, client=("203.0.113.9", 5555))
        client = httpx.AsyncClient(transport=transport, base_url="http://testserver")
        opened.append((client, container))
        tenant = await create_tenant(container.db, "acme")
        return Api(client, container, tenant.api_key, tenant.tenant_id)

    yield start
    for client, container in opened:
        await client.aclose()
        await container.stop()


@pytest.fixture
async def keyed(start_api: Callable[..., Any]) -> Api:
    api: Api = await start_api(secret_keys=generate_key())
    api.container.alert_network = LOCAL
    assert api.container.alert_loop is not None
    api.container.alert_loop.delivery.network = LOCAL
    return api


async def _put(api: Api, **body: Any) -> httpx.Response:
    return await api.client.put("/api/alerts", json=body, headers=api.auth())


async def _round(api: Api) -> None:
    """Send what is due, settle endings, deliver alerts: what serve's loops do in the background."""
    assert api.container.dispatcher is not None and api.container.alert_loop is not None
    await api.container.dispatcher.process_all()
    await api.container.alert_loop.run_once()


async def _alert_rows(db: Database, kind: str | None = None) -> list[dict[str, Any]]:
    query = select(alerts).order_by(alerts.c.created_at, alerts.c.id)
    if kind is not None:
        query = query.where(alerts.c.kind == kind)
    async with db.reading() as connection:
        return [dict(row) for row in (await connection.execute(query)).mappings()]


def _now() -> datetime:
    return datetime.now(UTC)


# -- settings --------------------------------------------------------------------------------


async def test_the_signing_secret_is_shown_once_and_rotates_on_request(
    keyed: Api, hook: Hook
) -> None:
    first = await _put(keyed, url=hook.url, lowBalanceThreshold="5", hardStop=True)
    assert first.status_code == 200, first.text
    body = first.json()
    secret = body["signingSecret"]
    assert secret and body["hasSigningSecret"] and body["lowBalanceThreshold"] == "5"
    again = (await _put(keyed, url=hook.url, failedSms=True)).json()
    assert again["signingSecret"] is None and again["hasSigningSecret"] is True
    read = (await keyed.client.get("/api/alerts", headers=keyed.auth())).json()
    assert read["signingSecret"] is None and read["failedSms"] is True and read["hardStop"] is False
    rotated = (await _put(keyed, url=hook.url, rotateSecret=True)).json()
    assert rotated["signingSecret"] not in (None, secret)
    dump = await dump_database(keyed.container.db)
    assert hook.url in dump  # the dump does see the settings
    assert secret not in dump and rotated["signingSecret"] not in dump


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("ftp://hooks.example.com/x", "only http or https"),
        ("http://127.0.0.1/hook", "loopback"),
        ("http://2130706433/hook", "loopback"),  # 127.0.0.1 written as one decimal number
        ("http://0x7f.1/hook", "loopback"),
        ("http://localhost/hook", "loopback"),
        ("http://169.254.169.254/latest/meta-data", "cloud metadata"),
        ("http://10.1.2.3/hook", "private"),
        ("http://[fe80::1]/hook", "link-local"),
        ("http://user:pw@hooks.example.com/", "credentials"),
        ("https://no-such-host.invalid/hook", "does not resolve"),
    ],
)
async def test_unsafe_urls_are_refused_at_save(api: Api, url: str, problem: str) -> None:
    answer = await _put(api, url=url)
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert error["details"]["field"] == "url" and problem in error["message"]


async def test_production_accepts_https_only(start_api: Callable[..., Any]) -> None:
    api: Api = await start_api(env="production", provider="simulator")
    answer = await _put(api, url="http://hooks.example.com/x")
    assert answer.status_code == 422 and "only https" in answer.json()["error"]["message"]


@pytest.mark.parametrize(
    ("body", "field", "problem"),
    [
        ({"email": "not-an-address"}, "email", "not an email address"),
        ({"email": "ops@example.com"}, "email", "SMTP_URL is not set"),
        ({"lowBalanceThreshold": "abc"}, "lowBalanceThreshold", "not a decimal"),
        ({"lowBalanceThreshold": "-1"}, "lowBalanceThreshold", "zero or positive"),
        ({"lowBalanceThreshold": "0.0000001"}, "lowBalanceThreshold", "more than 6 decimals"),
        ({"lowBalanceThreshold": "NaN"}, "lowBalanceThreshold", "not a finite number"),
        ({"failedSms": True}, "failedSms", "needs a url or an email"),
    ],
)
async def test_bad_settings_name_the_field(
    api: Api, body: dict[str, Any], field: str, problem: str
) -> None:
    answer = await _put(api, **body)
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert error["details"]["field"] == field and problem in error["message"]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"hardStop": "perhaps"}, 422),
        ({"url": 5}, 422),
        ({"balance": "100"}, 422),  # unknown field: a tenant cannot credit itself this way
        ({"url": "https://x.example/" + "a" * 2000}, 422),
    ],
)
async def test_malformed_bodies_are_422(api: Api, body: dict[str, Any], status: int) -> None:
    answer = await _put(api, **body)
    assert answer.status_code == status
    assert set(answer.json()["error"]) == {"code", "message", "details"}


async def test_a_webhook_url_needs_the_secret_keys(api: Api) -> None:
    api.container.alert_network = LOCAL
    answer = await _put(api, url="http://127.0.0.1:9/hook")
    assert answer.status_code == 409
    error = answer.json()["error"]
    assert error["code"] == "secret_keys_unset" and "SMSRELAY_SECRET_KEYS" in error["message"]


async def test_alert_settings_need_the_admin_scope_and_balances_cannot_be_written(api: Api) -> None:
    reader = await create_key(api.container.db, api.tenant_id, name="r", scopes=frozenset({"read"}))
    headers = api.auth(reader.api_key)
    assert (await api.client.put("/api/alerts", json={}, headers=headers)).status_code == 403
    assert (await api.client.get("/api/balance", headers=headers)).status_code == 200
    for method in ("POST", "PUT", "PATCH"):
        answer = await api.client.request(method, "/api/balance", json={}, headers=api.auth())
        assert answer.status_code == 405


async def test_balance_cursors_page_through_the_ledger(api: Api) -> None:
    for amount in ("1", "2", "3"):
        await balances.credit(api.container.db, api.tenant_id, amount, _now())
    first = (await api.client.get("/api/balance?limit=2", headers=api.auth())).json()
    assert [m["amount"] for m in first["movements"]] == ["3", "2"]
    params = {"limit": 2, "cursor": first["nextCursor"]}
    second = (await api.client.get("/api/balance", params=params, headers=api.auth())).json()
    assert [m["amount"] for m in second["movements"]] == ["1"] and second["nextCursor"] is None
    forged = encode_cursor(_now(), str(2**64))  # well formed, but no id is that large
    for cursor in ("nope", forged, encode_cursor(_now(), "x")):
        bad = await api.client.get("/api/balance", params={"cursor": cursor}, headers=api.auth())
        assert bad.status_code == 422 and bad.json()["error"]["details"]["field"] == "cursor"
    assert (await api.client.get("/api/balance?limit=0", headers=api.auth())).status_code == 422


# -- low balance -----------------------------------------------------------------------------


async def test_low_balance_alerts_once_per_crossing(keyed: Api, hook: Hook) -> None:
    db = keyed.container.db
    await balances.credit(db, keyed.tenant_id, "0.04", _now())
    assert (await _put(keyed, url=hook.url, lowBalanceThreshold="0.02")).status_code == 200
    for _ in range(4):  # 0.0317, 0.0234, 0.0151 (crossed), 0.0068
        assert (await keyed.send(to="+15005550006", message="Hello")).status_code == 202
    assert len(await _alert_rows(db, "low_balance")) == 1
    await balances.credit(db, keyed.tenant_id, "0.02", _now())  # 0.0268: back above, re-armed
    for _ in range(2):  # 0.0185 (crossed again), 0.0102
        await keyed.send(to="+15005550006", message="Hello")
    rows = await _alert_rows(db, "low_balance")
    assert [row["payload"]["balance"] for row in rows] == ["0.0151", "0.0185"]


async def test_a_low_balance_alert_is_delivered_signed(keyed: Api, hook: Hook) -> None:
    await balances.credit(keyed.container.db, keyed.tenant_id, "0.01", _now())
    secret = (await _put(keyed, url=hook.url, lowBalanceThreshold="0.005")).json()["signingSecret"]
    await keyed.send(to="+15005550006", message="Hello")
    assert keyed.container.alert_loop is not None
    await keyed.container.alert_loop.run_once()
    (headers, body), *_ = hook.received
    assert headers[SIGNATURE_HEADER] == sign(secret, headers[TIMESTAMP_HEADER], body)
    assert headers[SIGNATURE_HEADER] != sign("another secret", headers[TIMESTAMP_HEADER], body)
    assert json.loads(body) == {
        "type": "balance.low",
        "tenantId": keyed.tenant_id,
        "balance": "0.0017",
        "currency": "USD",
        "lowBalanceThreshold": "0.005",
        "occurredAt": json.loads(body)["occurredAt"],
    }
    (row,) = await _alert_rows(keyed.container.db)
    assert row["state"] == "delivered" and row["attempts"] == 1
    assert headers[ALERT_ID_HEADER] == row["id"]


# -- failed SMS ------------------------------------------------------------------------------


async def test_a_failed_sms_alerts_once_with_a_masked_recipient(keyed: Api, hook: Hook) -> None:
    secret = (await _put(keyed, url=hook.url, failedSms=True)).json()["signingSecret"]
    sent = await keyed.send(to=FAILING, message="Your code is 123456")
    outbox_id = sent.json()["outboxId"]
    await _round(keyed)
    await _round(keyed)
    assert len(hook.received) == 1
    headers, body = hook.received[0]
    assert headers[SIGNATURE_HEADER] == sign(secret, headers[TIMESTAMP_HEADER], body)
    payload = json.loads(body)
    assert payload["type"] == "sms.failed" and payload["outboxId"] == outbox_id
    assert payload["errorCode"] == "21211" and payload["status"] == "failed"
    assert payload["recipient"] == "+1******0001"
    assert FAILING not in body.decode() and "123456" not in body.decode()


async def test_failed_alerts_need_the_setting(keyed: Api, hook: Hook) -> None:
    await _put(keyed, url=hook.url)
    await keyed.send(to=FAILING, message="Hello")
    await _round(keyed)
    assert hook.received == [] and await _alert_rows(keyed.container.db) == []


async def test_a_refused_send_is_refunded_and_alerted(keyed: Api, hook: Hook) -> None:
    db = keyed.container.db
    await balances.credit(db, keyed.tenant_id, "1", _now())
    await _put(keyed, url=hook.url, failedSms=True)
    await keyed.send(to=FAILING, message="Hello")
    await _round(keyed)
    view = await balances.show(db, keyed.tenant_id)
    assert view.balance == "1" and [m.kind for m in view.movements] == ["refund", "debit", "credit"]
    assert len(hook.received) == 1


# -- delivery: retries and the SSRF guard ------------------------------------------------------


async def test_a_failing_endpoint_is_retried_with_backoff(keyed: Api, hook: Hook) -> None:
    hook.statuses = [500]
    await _put(keyed, url=hook.url, failedSms=True)
    await keyed.send(to=FAILING, message="Hello")
    await _round(keyed)
    (row,) = await _alert_rows(keyed.container.db)
    assert row["state"] == "pending" and row["attempts"] == 1
    assert row["last_error"] == "the alert url answered 500"
    assert row["next_attempt_at"] > _now()
    loop = keyed.container.alert_loop
    assert loop is not None
    loop.delivery.clock = lambda: _now() + timedelta(minutes=5)
    await loop.run_once()
    (row,) = await _alert_rows(keyed.container.db)
    assert row["state"] == "delivered" and row["attempts"] == 2 and len(hook.received) == 2


async def test_delivery_gives_up_after_the_cap(keyed: Api, hook: Hook) -> None:
    hook.statuses = [503] * 10
    loop = keyed.container.alert_loop
    assert loop is not None
    loop.delivery.max_attempts = 2
    await _put(keyed, url=hook.url, failedSms=True)
    await keyed.send(to=FAILING, message="Hello")
    await _round(keyed)
    loop.delivery.clock = lambda: _now() + timedelta(hours=2)
    await loop.run_once()
    await loop.run_once()
    (row,) = await _alert_rows(keyed.container.db)
    assert row["state"] == "failed" and row["attempts"] == 2 and len(hook.received) == 2


async def test_the_guard_refuses_at_delivery_too(keyed: Api, hook: Hook) -> None:
    await _put(keyed, url=hook.url, failedSms=True)  # saved while loopback was allowed
    loop = keyed.container.alert_loop
    assert loop is not None
    loop.delivery.network = AlertNetwork(allow_http=True)  # as in a real deployment
    await keyed.send(to=FAILING, message="Hello")
    await _round(keyed)
    (row,) = await _alert_rows(keyed.container.db)
    assert row["state"] == "failed" and "loopback" in row["last_error"]
    assert hook.received == []


async def test_a_name_that_later_resolves_inside_is_refused(keyed: Api, hook: Hook) -> None:
    """DNS rebinding: public when saved, loopback when the alert goes out."""
    answers = {"hooks.example.com": ["93.184.215.14"]}

    async def resolver(host: str, port: int) -> Sequence[str]:
        return answers[host]

    keyed.container.alert_network = AlertNetwork(allow_http=True, resolver=resolver)
    port = hook.url.split(":")[2].split("/")[0]
    assert (
        await _put(keyed, url=f"http://hooks.example.com:{port}/hook", failedSms=True)
    ).is_success
    answers["hooks.example.com"] = ["127.0.0.1"]
    loop = keyed.container.alert_loop
    assert loop is not None
    loop.delivery.network = AlertNetwork(allow_http=True, resolver=resolver)
    await keyed.send(to=FAILING, message="Hello")
    await _round(keyed)
    (row,) = await _alert_rows(keyed.container.db)
    assert row["state"] == "failed" and "loopback" in row["last_error"] and hook.received == []


# -- email -----------------------------------------------------------------------------------


async def test_alerts_are_emailed(start_api: Callable[..., Any], smtp: Any) -> None:
    inbox, url = smtp
    api: Api = await start_api(smtp_url=url, alert_email_from="alerts@relay.example")
    await balances.credit(api.container.db, api.tenant_id, "0.01", _now())
    saved = await _put(api, email="ops@example.com", lowBalanceThreshold="0.005", failedSms=True)
    assert saved.status_code == 200 and saved.json()["signingSecret"] is None
    await api.send(to="+15005550006", message="Hello")
    await api.send(to=FAILING, message="Hello")
    await _round(api)
    async with asyncio.timeout(10):
        while len(inbox.messages) < 2:
            await asyncio.sleep(0.02)
    subjects = sorted(message["Subject"] for message in inbox.messages)
    assert subjects == ["smsrelay: an SMS failed", "smsrelay: balance is low"]
    assert all(m["To"] == "ops@example.com" for m in inbox.messages)
    assert all(m["From"] == "alerts@relay.example" for m in inbox.messages)
    texts = [message.get_payload() for message in inbox.messages]
    assert any("+1******0001" in text for text in texts)
    assert not any(FAILING in text for text in texts)
    rows = await _alert_rows(api.container.db)
    assert {row["state"] for row in rows} == {"delivered"} and len(rows) == 2


# -- serve runs the loop ---------------------------------------------------------------------


async def test_serve_settles_and_delivers_in_the_background(
    start_app: Callable[..., Any], hook: Hook
) -> None:
    live: LiveApp = await start_app(secret_keys=generate_key(), alert_poll_seconds=0.05)
    live.container.alert_network = LOCAL
    assert live.container.alert_loop is not None
    live.container.alert_loop.delivery.network = LOCAL
    await balances.credit(live.container.db, live.tenant_id, "1", _now())
    body = {"url": hook.url, "failedSms": True}
    assert (await live.client.put("/api/alerts", json=body, headers=live.auth())).is_success
    outbox_id = (await live.send(to=FAILING, message="Hello")).json()["outboxId"]
    await live.wait_for_status(outbox_id, "failed")
    async with asyncio.timeout(15):
        while not hook.received:
            await asyncio.sleep(0.05)
    assert json.loads(hook.received[0][1])["outboxId"] == outbox_id
    async with asyncio.timeout(15):
        while (await balances.show(live.container.db, live.tenant_id)).balance != "1":
            await asyncio.sleep(0.05)
