"""The Twilio simulator over real loopback HTTP, driven by the official twilio SDK."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from multidict import CIMultiDict
from twilio.base.exceptions import TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.rest import Client

from smsrelay.providers.simulator import (
    DEFAULT_ACCOUNT_SID,
    DeliveryFailure,
    Faults,
    SimulatorConfig,
    SimulatorServer,
)
from smsrelay.providers.simulator.callbacks import IDEMPOTENCY_HEADER, SIGNATURE_HEADER
from smsrelay.providers.simulator.resources import count_segments
from smsrelay.providers.simulator.server import banner, serve
from smsrelay.providers.twilio.signature import is_valid_signature

pytestmark = [
    # twilio 9.13's AsyncTwilioHttpClient builds aiohttp.BasicAuth and passes `auth=`, both
    # deprecated since aiohttp 3.14; nothing we can change from outside the SDK.
    pytest.mark.filterwarnings("ignore:BasicAuth is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:The 'auth' parameter is deprecated:DeprecationWarning"),
]

VECTORS_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "vectors"
MAGIC = json.loads((VECTORS_DIR / "twilio_errors.json").read_text())[
    "test_credentials_magic_numbers"
]

OK_FROM = "+15005550006"
TO = "+14155550123"
SERVICE_SID = "MG" + "a" * 32
WAIT_SECONDS = 5.0


def _documented(direction: str) -> list[tuple[str, int]]:
    rows = MAGIC[direction]
    # "All Others" rows describe test credentials; the simulator accepts other numbers.
    refused = [row for row in rows if row["number"].startswith("+") and row["error_code"]]
    return [(row["number"], row["error_code"]) for row in refused]


# Twilio's documented magic numbers, plus the two product.md §2 adds for To.
MAGIC_TO_CASES = [*_documented("to"), ("+15005550007", 21610), ("+15005550008", 21612)]
MAGIC_FROM_CASES = _documented("from")


@dataclass(frozen=True)
class ReceivedCallback:
    """A status callback as our receiving server saw it."""

    url: str
    params: dict[str, str]
    headers: CIMultiDict[str]


@dataclass
class CallbackSink:
    """A local HTTP server that records every status callback posted to it."""

    base_url: str = ""
    received: list[ReceivedCallback] = field(default_factory=list)
    arrived: asyncio.Condition = field(default_factory=asyncio.Condition)

    @property
    def url(self) -> str:
        return f"{self.base_url}/status"

    async def handle(self, request: web.Request) -> web.Response:
        form = await request.post()
        params = {name: str(value) for name, value in form.items()}
        self.received.append(ReceivedCallback(str(request.url), params, request.headers.copy()))
        async with self.arrived:
            self.arrived.notify_all()
        return web.Response()

    async def wait_for(self, count: int) -> list[ReceivedCallback]:
        async with asyncio.timeout(WAIT_SECONDS), self.arrived:
            await self.arrived.wait_for(lambda: len(self.received) >= count)
        return self.received

    def statuses(self) -> list[str]:
        return [callback.params["MessageStatus"] for callback in self.received]


@pytest.fixture
async def callback_sink() -> AsyncIterator[CallbackSink]:
    sink = CallbackSink()
    app = web.Application()
    app.router.add_post("/status", sink.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    sink.base_url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    yield sink
    await runner.cleanup()


def basic_auth(login: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{login}:{password}".encode()).decode()


async def _wait_until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(WAIT_SECONDS):
        while not condition():  # simulator state offers no event to await
            await asyncio.sleep(0.005)


# --- the SDK against the simulator -----------------------------------------------------------


async def test_sdk_creates_a_queued_message(twilio_sdk: Client, simulator: SimulatorServer) -> None:
    message = await twilio_sdk.messages.create_async(to=TO, from_=OK_FROM, body="Hello")

    assert re.fullmatch(r"SM[0-9a-f]{32}", message.sid)
    assert (message.status, message.to, message.from_, message.body) == (
        "queued",
        TO,
        OK_FROM,
        "Hello",
    )
    assert message.account_sid == simulator.account_sid
    assert message.num_segments == "1"
    assert (message.price, message.price_unit, message.error_code) == (None, "USD", None)
    assert message.date_created.tzinfo is not None
    assert (
        message.uri == f"/2010-04-01/Accounts/{simulator.account_sid}/Messages/{message.sid}.json"
    )
    assert [m.sid for m in simulator.state.accepted] == [message.sid]
    assert [(r.http_status, r.sid) for r in simulator.state.requests] == [(201, message.sid)]


async def test_sdk_fetch_follows_the_message_to_delivered(
    twilio_sdk: Client, simulator: SimulatorServer
) -> None:
    created = await twilio_sdk.messages.create_async(to=TO, from_=OK_FROM, body="Hi")
    await _wait_until(lambda: simulator.state.accepted[0].status == "delivered")

    fetched = await twilio_sdk.messages(created.sid).fetch_async()

    assert (fetched.sid, fetched.status, fetched.price) == (created.sid, "delivered", "-0.00790")
    assert fetched.date_sent == created.date_created


async def test_sdk_lists_with_filters_newest_first_across_pages(twilio_sdk: Client) -> None:
    for number in range(5):
        await twilio_sdk.messages.create_async(to=TO, from_=OK_FROM, body=f"m{number}")
    await twilio_sdk.messages.create_async(to="+14155550999", from_=OK_FROM, body="other")
    now = datetime.now(UTC)

    mine = await twilio_sdk.messages.list_async(to=TO, page_size=2)
    assert [m.body for m in mine] == ["m4", "m3", "m2", "m1", "m0"]
    assert len(await twilio_sdk.messages.list_async(to=TO, page_size=2, limit=3)) == 3
    assert len(await twilio_sdk.messages.list_async(date_sent=now.date())) == 6
    assert (
        len(await twilio_sdk.messages.list_async(date_sent_after=now - timedelta(minutes=1))) == 6
    )
    assert await twilio_sdk.messages.list_async(date_sent_after=now + timedelta(minutes=1)) == []
    assert await twilio_sdk.messages.list_async(date_sent_before=now - timedelta(minutes=1)) == []


async def test_sync_sdk_client_works_from_a_thread(simulator: SimulatorServer) -> None:
    client = Client(simulator.account_sid, simulator.auth_token, environment={})
    client.api.base_url = simulator.base_url
    try:
        created = await asyncio.to_thread(client.messages.create, to=TO, from_=OK_FROM, body="sync")
        fetched = await asyncio.to_thread(client.messages(created.sid).fetch)
        listed = await asyncio.to_thread(client.messages.list, to=TO)
    finally:
        client.http_client.session.close()
    assert fetched.body == "sync"
    assert [m.sid for m in listed] == [created.sid]


async def test_a_messaging_service_sid_alone_is_a_sender(twilio_sdk: Client) -> None:
    message = await twilio_sdk.messages.create_async(
        to=TO, messaging_service_sid=SERVICE_SID, body="via service"
    )
    assert (message.messaging_service_sid, message.from_) == (SERVICE_SID, None)


async def test_sdk_fetches_the_account(twilio_sdk: Client, simulator: SimulatorServer) -> None:
    account = await twilio_sdk.api.v2010.accounts(simulator.account_sid).fetch_async()
    assert (account.sid, account.status) == (simulator.account_sid, "active")


async def test_the_account_resource_never_echoes_the_auth_token(
    raw: aiohttp.ClientSession, simulator: SimulatorServer
) -> None:
    async with raw.get(f"/2010-04-01/Accounts/{simulator.account_sid}.json") as reply:
        text = await reply.text()
    assert reply.status == 200
    assert simulator.auth_token not in text


async def test_an_unknown_message_is_20404(twilio_sdk: Client) -> None:
    with pytest.raises(TwilioRestException) as raised:
        await twilio_sdk.messages("SM" + "0" * 32).fetch_async()
    assert (raised.value.status, raised.value.code) == (404, 20404)


# --- Twilio's rules on create ----------------------------------------------------------------


@pytest.mark.parametrize(("to", "code"), MAGIC_TO_CASES)
async def test_magic_to_numbers_are_refused(
    twilio_sdk: Client, simulator: SimulatorServer, to: str, code: int
) -> None:
    with pytest.raises(TwilioRestException) as raised:
        await twilio_sdk.messages.create_async(to=to, from_=OK_FROM, body="x")
    assert (raised.value.status, raised.value.code) == (400, code)
    assert simulator.state.accepted == []
    assert [(r.http_status, r.error_code) for r in simulator.state.requests] == [(400, code)]


@pytest.mark.parametrize(("from_", "code"), MAGIC_FROM_CASES)
async def test_magic_from_numbers_are_refused(
    twilio_sdk: Client, simulator: SimulatorServer, from_: str, code: int
) -> None:
    with pytest.raises(TwilioRestException) as raised:
        await twilio_sdk.messages.create_async(to=TO, from_=from_, body="x")
    assert (raised.value.status, raised.value.code) == (400, code)
    assert simulator.state.accepted == []


async def test_any_other_sender_is_accepted(twilio_sdk: Client) -> None:
    message = await twilio_sdk.messages.create_async(to=TO, from_="+442071838750", body="x")
    assert message.status == "queued"


@pytest.mark.parametrize(
    ("form", "code"),
    [
        ({"From": OK_FROM, "Body": "x"}, 21604),
        ({"To": TO, "From": OK_FROM}, 21602),
        ({"To": TO, "Body": "x"}, 21603),
        ({"To": TO, "From": OK_FROM, "Body": "x" * 1601}, 21617),
    ],
    ids=["no-to", "no-body", "no-sender", "body-too-long"],
)
async def test_missing_or_invalid_parameters_get_twilio_errors(
    raw: aiohttp.ClientSession, simulator: SimulatorServer, form: dict[str, str], code: int
) -> None:
    path = f"/2010-04-01/Accounts/{simulator.account_sid}/Messages.json"
    async with raw.post(path, data=form) as reply:
        body = await reply.json()
    assert reply.status == 400
    assert body == {
        "code": code,
        "message": body["message"],
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": 400,
    }
    assert simulator.state.accepted == []


async def test_a_wrong_auth_token_is_401_20003(simulator: SimulatorServer) -> None:
    http_client = AsyncTwilioHttpClient()
    client = Client(simulator.account_sid, "wrong", http_client=http_client, environment={})
    client.api.base_url = simulator.base_url
    try:
        with pytest.raises(TwilioRestException) as raised:
            await client.messages.create_async(to=TO, from_=OK_FROM, body="x")
    finally:
        await http_client.close()
    assert (raised.value.status, raised.value.code) == (401, 20003)
    assert simulator.state.requests == []


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer abc", "Basic !!!", basic_auth(DEFAULT_ACCOUNT_SID, "nope")],
    ids=["none", "not-basic", "bad-base64", "wrong-token"],
)
async def test_requests_without_valid_basic_auth_are_refused(
    simulator: SimulatorServer, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    async with (
        aiohttp.ClientSession(simulator.base_url, headers=headers) as session,
        session.get(f"/2010-04-01/Accounts/{simulator.account_sid}/Messages.json") as reply,
    ):
        body = await reply.json()
    assert (reply.status, body["code"]) == (401, 20003)
    assert reply.headers["WWW-Authenticate"].startswith("Basic")


async def test_another_accounts_path_is_not_found(raw: aiohttp.ClientSession) -> None:
    async with raw.get("/2010-04-01/Accounts/AC" + "f" * 32 + "/Messages.json") as reply:
        assert (reply.status, (await reply.json())["code"]) == (404, 20404)


async def test_unknown_routes_answer_twilio_404_json(raw: aiohttp.ClientSession) -> None:
    async with raw.get("/2010-04-01/Nothing.json") as reply:
        assert (reply.status, (await reply.json())["code"]) == (404, 20404)


@pytest.mark.parametrize(
    "query", [{"DateSent": "yesterday"}, {"PageSize": "0"}, {"Page": "-1"}], ids=str
)
async def test_malformed_list_filters_are_400(
    raw: aiohttp.ClientSession, simulator: SimulatorServer, query: dict[str, str]
) -> None:
    path = f"/2010-04-01/Accounts/{simulator.account_sid}/Messages.json"
    async with raw.get(path, params=query) as reply:
        assert (reply.status, (await reply.json())["code"]) == (400, 20001)


async def test_concurrent_creates_are_each_accepted_once(
    twilio_sdk: Client, simulator: SimulatorServer
) -> None:
    messages = await asyncio.gather(
        *(twilio_sdk.messages.create_async(to=TO, from_=OK_FROM, body=f"{n}") for n in range(20))
    )
    assert len({m.sid for m in messages}) == 20
    assert len(simulator.state.accepted_for(TO)) == 20


@pytest.mark.parametrize(
    ("body", "segments"),
    [("", 1), ("a" * 160, 1), ("a" * 161, 2), ("é" * 70, 1), ("é" * 71, 2), ("😀" * 35, 1)],
)
def test_segment_counting(body: str, segments: int) -> None:
    assert count_segments(body) == segments


# --- status callbacks ------------------------------------------------------------------------


async def test_status_callbacks_are_signed_and_arrive_in_order(
    twilio_sdk: Client, simulator: SimulatorServer, callback_sink: CallbackSink
) -> None:
    callback_url = f"{callback_sink.url}?tenant=a%20b&x=1"
    message = await twilio_sdk.messages.create_async(
        to=TO, from_=OK_FROM, body="Hi", status_callback=callback_url
    )
    received = await callback_sink.wait_for(3)

    assert callback_sink.statuses() == ["queued", "sent", "delivered"]
    for callback in received:
        assert callback.url == callback_url
        signature = callback.headers[SIGNATURE_HEADER]
        assert is_valid_signature(callback.url, callback.params, signature, simulator.auth_token)
        assert callback.params["MessageSid"] == callback.params["SmsSid"] == message.sid
        assert callback.params["SmsStatus"] == callback.params["MessageStatus"]
        assert (callback.params["To"], callback.params["From"]) == (TO, OK_FROM)
        assert callback.params["AccountSid"] == simulator.account_sid
        assert callback.params["ApiVersion"] == "2010-04-01"
        assert "ErrorCode" not in callback.params
    assert len({c.headers[IDEMPOTENCY_HEADER] for c in received}) == 3
    await _wait_until(lambda: len(simulator.state.callbacks) == 3)
    assert [r.http_status for r in simulator.state.callbacks] == [200, 200, 200]


@pytest.mark.parametrize(
    ("to", "statuses", "code", "error_message"),
    [
        (
            "+14155553003",
            ["queued", "sent", "undelivered"],
            30003,
            "Unreachable destination handset",
        ),
        ("+14155553008", ["queued", "failed"], 30008, "Unknown error"),
    ],
)
async def test_configured_recipients_fail_with_an_error_code(
    twilio_sdk: Client,
    callback_sink: CallbackSink,
    to: str,
    statuses: list[str],
    code: int,
    error_message: str,
) -> None:
    message = await twilio_sdk.messages.create_async(
        to=to, from_=OK_FROM, body="x", status_callback=callback_sink.url
    )
    received = await callback_sink.wait_for(len(statuses))

    assert callback_sink.statuses() == statuses
    assert received[-1].params["ErrorCode"] == str(code)
    assert all("ErrorCode" not in c.params for c in received[:-1])
    fetched = await twilio_sdk.messages(message.sid).fetch_async()
    assert (fetched.status, fetched.error_code, fetched.error_message) == (
        statuses[-1],
        code,
        error_message,
    )


async def test_delivery_failures_are_configurable(callback_sink: CallbackSink) -> None:
    config = SimulatorConfig(
        step_delay=0.01, delivery_failures=(DeliveryFailure("4444", "undelivered", 30005),)
    )
    async with SimulatorServer(config) as server:
        headers = {"Authorization": basic_auth(server.account_sid, server.auth_token)}
        form = {"To": "+14155554444", "From": OK_FROM, "Body": "x"}
        form["StatusCallback"] = callback_sink.url
        async with (
            aiohttp.ClientSession(server.base_url, headers=headers) as session,
            session.post(
                f"/2010-04-01/Accounts/{server.account_sid}/Messages.json", data=form
            ) as r,
        ):
            assert r.status == 201
        received = await callback_sink.wait_for(3)
    assert (received[-1].params["MessageStatus"], received[-1].params["ErrorCode"]) == (
        "undelivered",
        "30005",
    )


async def test_without_a_callback_url_the_status_still_progresses(
    twilio_sdk: Client, simulator: SimulatorServer
) -> None:
    await twilio_sdk.messages.create_async(to=TO, from_=OK_FROM, body="x")
    await _wait_until(lambda: simulator.state.accepted[0].status == "delivered")
    assert simulator.state.callbacks == []


async def test_an_unreachable_callback_url_is_recorded_not_retried(
    twilio_sdk: Client, simulator: SimulatorServer
) -> None:
    dead_url = "http://127.0.0.1:9/status"  # discard port: nothing listens
    await twilio_sdk.messages.create_async(to=TO, from_=OK_FROM, body="x", status_callback=dead_url)
    await _wait_until(lambda: len(simulator.state.callbacks) == 3)
    assert [r.http_status for r in simulator.state.callbacks] == [None, None, None]


# --- fault injection -------------------------------------------------------------------------


async def test_rate_429_refuses_with_retry_after(
    twilio_sdk: Client, raw: aiohttp.ClientSession, simulator: SimulatorServer
) -> None:
    simulator.faults.rate_429 = 1.0
    simulator.faults.retry_after_seconds = 7
    with pytest.raises(TwilioRestException) as raised:
        await twilio_sdk.messages.create_async(to=TO, from_=OK_FROM, body="x")
    path = f"/2010-04-01/Accounts/{simulator.account_sid}/Messages.json"
    async with raw.post(path, data={"To": TO, "From": OK_FROM, "Body": "x"}) as reply:
        assert (reply.status, reply.headers["Retry-After"]) == (429, "7")
    assert (raised.value.status, raised.value.code) == (429, 20429)
    assert simulator.state.accepted == []
    assert [r.http_status for r in simulator.state.requests] == [429, 429]


async def test_5xx_before_accepting_records_nothing(
    twilio_sdk: Client, simulator: SimulatorServer
) -> None:
    simulator.faults.error_5xx_rate = 1.0
    with pytest.raises(TwilioRestException) as raised:
        await twilio_sdk.messages.create_async(to=TO, from_=OK_FROM, body="x")
    assert (raised.value.status, raised.value.code) == (500, 20500)
    assert simulator.state.accepted == []


async def test_5xx_after_accepting_records_the_message(
    twilio_sdk: Client, simulator: SimulatorServer
) -> None:
    simulator.faults.error_5xx_after_accept_rate = 1.0
    with pytest.raises(TwilioRestException) as raised:
        await twilio_sdk.messages.create_async(to=TO, from_=OK_FROM, body="ambiguous")
    simulator.faults.reset()

    assert raised.value.status == 500
    [accepted] = simulator.state.accepted
    assert [(r.http_status, r.sid) for r in simulator.state.requests] == [(500, accepted.sid)]
    found = await twilio_sdk.messages.list_async(to=TO)
    assert [(m.sid, m.body) for m in found] == [(accepted.sid, "ambiguous")]


async def test_timeout_fault_accepts_then_hangs_until_stopped(
    raw: aiohttp.ClientSession, simulator: SimulatorServer
) -> None:
    simulator.faults.timeout_rate = 1.0
    path = f"/2010-04-01/Accounts/{simulator.account_sid}/Messages.json"
    form = {"To": TO, "From": OK_FROM, "Body": "x"}
    with pytest.raises(TimeoutError):
        async with raw.post(path, data=form, timeout=aiohttp.ClientTimeout(total=0.3)):
            pass
    assert len(simulator.state.accepted) == 1

    started = time.monotonic()
    await simulator.stop()
    assert time.monotonic() - started < 1.5


async def test_the_sdks_own_timeout_is_not_applied(simulator: SimulatorServer) -> None:
    """Documents twilio 9.13: AsyncTwilioHttpClient(timeout=...) never reaches aiohttp."""
    simulator.faults.timeout_rate = 1.0
    simulator.faults.timeout_seconds = 0.6
    http_client = AsyncTwilioHttpClient(timeout=0.1)
    client = Client(
        simulator.account_sid, simulator.auth_token, http_client=http_client, environment={}
    )
    client.api.base_url = simulator.base_url
    started = time.monotonic()
    try:
        message = await client.messages.create_async(to=TO, from_=OK_FROM, body="x")
    finally:
        await http_client.close()
    assert time.monotonic() - started >= 0.6
    assert message.status == "queued"


async def test_latency_delays_the_answer(twilio_sdk: Client, simulator: SimulatorServer) -> None:
    simulator.faults.latency = 0.2
    started = time.monotonic()
    await twilio_sdk.messages.create_async(to=TO, from_=OK_FROM, body="x")
    assert time.monotonic() - started >= 0.2


async def test_duplicate_callbacks_repeat_the_same_event(
    twilio_sdk: Client, simulator: SimulatorServer, callback_sink: CallbackSink
) -> None:
    simulator.faults.callback_duplicate_rate = 1.0
    await twilio_sdk.messages.create_async(
        to=TO, from_=OK_FROM, body="x", status_callback=callback_sink.url
    )
    received = await callback_sink.wait_for(6)

    assert callback_sink.statuses() == [
        "queued",
        "queued",
        "sent",
        "sent",
        "delivered",
        "delivered",
    ]
    for first, again in zip(received[::2], received[1::2], strict=True):
        assert first.params == again.params
        assert first.headers[IDEMPOTENCY_HEADER] == again.headers[IDEMPOTENCY_HEADER]


async def test_reordered_callbacks_deliver_the_final_status_before_sent(
    twilio_sdk: Client, simulator: SimulatorServer, callback_sink: CallbackSink
) -> None:
    simulator.faults.callback_reorder_rate = 1.0
    await twilio_sdk.messages.create_async(
        to=TO, from_=OK_FROM, body="x", status_callback=callback_sink.url
    )
    await callback_sink.wait_for(3)
    assert callback_sink.statuses() == ["queued", "delivered", "sent"]
    assert simulator.state.accepted[0].status == "delivered"


def test_fault_rates_must_be_probabilities() -> None:
    with pytest.raises(ValueError, match="rate_429"):
        Faults(rate_429=1.5)


def test_faults_are_reproducible_from_their_seed() -> None:
    first, second = Faults(seed=7), Faults(seed=7)
    assert [first.roll(0.5) for _ in range(50)] == [second.roll(0.5) for _ in range(50)]
    assert not any(first.roll(0.0) for _ in range(50))
    assert all(first.roll(1.0) for _ in range(50))


def test_faults_reset_turns_everything_off() -> None:
    faults = Faults(rate_429=1.0, latency=2.0, seed=3)
    faults.reset()
    assert faults == Faults(seed=3)


# --- privacy, runner -------------------------------------------------------------------------


async def test_logs_never_hold_a_whole_number_or_a_body(
    raw: aiohttp.ClientSession,
    simulator: SimulatorServer,
    callback_sink: CallbackSink,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    path = f"/2010-04-01/Accounts/{simulator.account_sid}/Messages.json"
    body = "secret one-time code 123456"
    form = {"To": TO, "From": OK_FROM, "Body": body, "StatusCallback": callback_sink.url}
    async with raw.post(path, data=form) as reply:
        assert reply.status == 201
    async with raw.post(path, data={**form, "To": "+15005550001"}) as reply:
        assert reply.status == 400
    async with raw.get(path, params={"To": TO}) as reply:
        assert reply.status == 200
    await callback_sink.wait_for(3)

    logged = " ".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert "***0123" in logged
    for secret in (TO, OK_FROM, "+15005550001", body):
        assert secret not in logged


def test_banner_says_where_and_how_to_connect() -> None:
    text = banner("http://127.0.0.1:8088", SimulatorConfig())
    assert "TWILIO_API_BASE_URL=http://127.0.0.1:8088" in text
    assert f"TWILIO_ACCOUNT_SID={DEFAULT_ACCOUNT_SID}" in text
    assert "+15005550001" in text


async def test_serve_prints_the_banner_and_stops_when_cancelled(
    capsys: pytest.CaptureFixture[str],
) -> None:
    server = SimulatorServer(SimulatorConfig(step_delay=0.01))
    task = asyncio.create_task(serve(server, "127.0.0.1", 0))
    await _wait_until(
        lambda: server.base_url is not None and "listening" in capsys.readouterr().out
    )
    headers = {"Authorization": basic_auth(server.account_sid, server.auth_token)}
    async with (
        aiohttp.ClientSession(headers=headers) as session,
        session.get(f"{server.base_url}/2010-04-01/Accounts/{server.account_sid}.json") as reply,
    ):
        assert reply.status == 200
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
