"""The Twilio adapter on the wire: a local Twilio-shaped server, exact requests, outcomes."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from smsrelay.providers.base import (
    Outcome,
    Provider,
    ProviderConfigError,
    SendRequest,
)
from smsrelay.providers.twilio import TwilioProvider, classify
from tests.providers.wire import (
    Canned,
    RecordingServer,
    answer_with_nothing,
    closed_port,
    closing_all,
    serving,
    stall,
    with_raw_server,
)

VECTORS = Path(__file__).resolve().parents[2].parent / "shared" / "vectors"
SID = "AC" + "1" * 32
TOKEN = "test-auth-token-0123456789"
SERVICE_SID = "MG" + "2" * 32
FROM = "+15005550006"
MESSAGES_PATH = f"/2010-04-01/Accounts/{SID}/Messages.json"
CALLBACK = "https://relay.example.com/api/webhooks/twilio/status?outboxId=42"
TO = "+14155552345"


def _vector(name: str) -> Any:
    return json.loads((VECTORS / name).read_text(encoding="utf-8"))


def _message_example(name: str) -> dict[str, Any]:
    """A 201 body from Twilio's OpenAPI examples (twilio-oai@d50069b4)."""
    schema = _vector("twilio_messages_schema.json")
    return dict(schema["create_message"]["response_201_examples"][name]["value"])


class FakeTwilio(RecordingServer):
    """A local Twilio-shaped server: every path answered from the queue, or with a 201."""

    def __init__(self) -> None:
        super().__init__()
        self.answers_by_to: dict[str, Canned] = {}

    def application(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        return app

    async def _handle(self, request: web.Request) -> web.Response:
        seen = await self.record(request)
        return await self.reply(self._answer_for(seen.form.get("To", [""])[0]))

    def _answer_for(self, to: str) -> Canned:
        if to in self.answers_by_to:
            return self.answers_by_to[to]
        if self.answers:
            return self.answers.pop(0)
        return Canned(201, _message_example("createWithMessagingService"))


@pytest.fixture
async def twilio() -> AsyncIterator[FakeTwilio]:
    async with serving(FakeTwilio()) as fake:
        yield fake


ProviderFactory = Callable[..., TwilioProvider]


@pytest.fixture
async def make_provider(twilio: FakeTwilio) -> AsyncIterator[ProviderFactory]:
    def build(**overrides: Any) -> TwilioProvider:
        options: dict[str, Any] = {
            "account_sid": SID,
            "auth_token": TOKEN,
            "messaging_service_sid": SERVICE_SID,
            "from_number": None,
            "api_base_url": twilio.base_url,
            "timeout_seconds": 2.0,
        }
        return TwilioProvider(**(options | overrides))

    async with closing_all(build) as make:
        yield make


def _request(**overrides: Any) -> SendRequest:
    fields: dict[str, Any] = {"to": TO, "body": "Hello! 👍", "status_callback_url": CALLBACK}
    return SendRequest(**(fields | overrides))


# -- the outgoing request ------------------------------------------------------------------


async def test_send_posts_the_exact_request(twilio: FakeTwilio, make_provider: ProviderFactory):
    result = await make_provider().send(_request(validity_seconds=600))

    assert result.outcome is Outcome.ACCEPTED
    assert result.provider_message_id == "SM" + "a" * 32
    assert result.provider_status == "queued"
    [seen] = twilio.requests
    assert (seen.method, seen.path, seen.query) == ("POST", MESSAGES_PATH, {})
    assert seen.form == {
        "To": [TO],
        "Body": ["Hello! 👍"],
        "MessagingServiceSid": [SERVICE_SID],
        "StatusCallback": [CALLBACK],
        "ValidityPeriod": ["600"],
    }
    credentials = base64.b64encode(f"{SID}:{TOKEN}".encode()).decode()
    assert seen.headers["Authorization"] == f"Basic {credentials}"
    assert seen.headers["Content-Type"] == "application/x-www-form-urlencoded"


SENDER_CASES = [
    # (configured service SID, configured From, per-request sender, expected sender fields)
    (SERVICE_SID, FROM, None, {"MessagingServiceSid": [SERVICE_SID]}),
    (None, FROM, None, {"From": [FROM]}),
    (SERVICE_SID, None, "+15005550001", {"From": ["+15005550001"]}),
    (None, FROM, "MG" + "9" * 32, {"MessagingServiceSid": ["MG" + "9" * 32]}),
    (SERVICE_SID, FROM, "ACMEALERTS", {"From": ["ACMEALERTS"]}),
]


@pytest.mark.parametrize(("service", "from_number", "sender", "expected"), SENDER_CASES)
async def test_sender_choice(
    twilio: FakeTwilio,
    make_provider: ProviderFactory,
    service: str | None,
    from_number: str | None,
    sender: str | None,
    expected: dict[str, list[str]],
):
    provider = make_provider(messaging_service_sid=service, from_number=from_number)

    await provider.send(_request(sender=sender, status_callback_url=None))

    [seen] = twilio.requests
    assert {k: v for k, v in seen.form.items() if k not in ("To", "Body")} == expected


@pytest.mark.parametrize(("asked", "sent"), [(50_000, "36000"), (0, "1"), (3600, "3600")])
async def test_validity_is_kept_in_twilios_range(
    twilio: FakeTwilio, make_provider: ProviderFactory, asked: int, sent: str
):
    await make_provider().send(_request(validity_seconds=asked))

    assert twilio.requests[0].form["ValidityPeriod"] == [sent]


async def test_base_url_with_trailing_slash(twilio: FakeTwilio, make_provider: ProviderFactory):
    await make_provider(api_base_url=twilio.base_url + "/").send(_request())

    assert twilio.requests[0].path == MESSAGES_PATH


async def test_twilio_region_in_the_environment_does_not_move_the_host(
    twilio: FakeTwilio, make_provider: ProviderFactory, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("TWILIO_REGION", "au1")
    monkeypatch.setenv("TWILIO_EDGE", "sydney")

    result = await make_provider().send(_request())

    assert result.accepted
    assert len(twilio.requests) == 1


async def test_secrets_never_reach_the_logs(
    make_provider: ProviderFactory, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.DEBUG)

    await make_provider().send(_request())

    credentials = base64.b64encode(f"{SID}:{TOKEN}".encode()).decode()
    assert TOKEN not in caplog.text
    assert credentials not in caplog.text


# -- classified failures ------------------------------------------------------------------


def _error_body(code: int | None, message: str, status: int, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"message": message, "status": status, **extra}
    if code is not None:
        body |= {"code": code, "more_info": f"https://www.twilio.com/docs/errors/{code}"}
    return body


def _docs(code: int) -> str:
    return f"https://www.twilio.com/docs/errors/{code}"


@dataclass
class FailureCase:
    """A canned answer and the SendResult fields it must produce."""

    canned: Canned
    outcome: Outcome
    code: int | str | None
    message: str
    more_info: str | None = None
    details: dict[str, Any] | None = None
    retry_after: float | None = None


_LEGACY = _vector("twilio_errors.json")["rest_error_response_shapes"]
_RFC9457 = _LEGACY["rfc9457"]["example"]

FAILURE_CASES = {
    "invalid To (400/21211)": FailureCase(
        Canned(400, _error_body(21211, "Invalid 'To' Phone Number", 400)),
        Outcome.PERMANENT,
        21211,
        "Invalid 'To' Phone Number",
        _docs(21211),
    ),
    "unsubscribed (400/21610)": FailureCase(
        Canned(400, _error_body(21610, "Attempt to send to unsubscribed recipient", 400)),
        Outcome.OPTED_OUT,
        21610,
        "Attempt to send to unsubscribed recipient",
        _docs(21610),
    ),
    "rate limited with Retry-After seconds (429/20429)": FailureCase(
        Canned(429, _error_body(20429, "Too Many Requests", 429), {"Retry-After": "7"}),
        Outcome.RETRYABLE,
        20429,
        "Too Many Requests",
        _docs(20429),
        retry_after=7.0,
    ),
    "rate limited without a code or Retry-After (429)": FailureCase(
        Canned(429, "<html>slow down</html>"),
        Outcome.RETRYABLE,
        None,
        "HTTP 429 from Twilio",
    ),
    "server error with an HTML body (500)": FailureCase(
        Canned(500, "<html>oops</html>"),
        Outcome.AMBIGUOUS,
        None,
        "HTTP 500 from Twilio",
    ),
    "unknown code on 503": FailureCase(
        Canned(503, _error_body(20500, "Service unavailable", 503)),
        Outcome.AMBIGUOUS,
        20500,
        "Service unavailable",
        _docs(20500),
    ),
    "bad credentials (401/20003)": FailureCase(
        Canned(401, _error_body(20003, "Authenticate", 401)),
        Outcome.PERMANENT,
        20003,
        "Authenticate",
        _docs(20003),
    ),
    "unknown code on 400": FailureCase(
        Canned(400, _error_body(21999, "Something new", 400)),
        Outcome.PERMANENT,
        21999,
        "Something new",
        _docs(21999),
    ),
    "legacy body with details (twilio-python test shape)": FailureCase(
        Canned(400, _LEGACY["legacy"]["example"]),
        Outcome.PERMANENT,
        20001,
        "Bad request",
        _docs(20001),
        details={"foo": "bar"},
    ),
    "RFC 9457 problem body": FailureCase(
        Canned(400, _RFC9457),
        Outcome.PERMANENT,
        20001,
        "The 'PhoneNumber' parameter is required.",
        "https://www.twilio.com/docs/api/errors/20001",
    ),
    "accepted without a SID": FailureCase(
        Canned(201, {"status": "queued"}),
        Outcome.AMBIGUOUS,
        None,
        "Twilio accepted the request but returned no message SID",
    ),
}


@pytest.mark.parametrize("case", FAILURE_CASES.values(), ids=FAILURE_CASES.keys())
async def test_failure_is_classified(
    twilio: FakeTwilio, make_provider: ProviderFactory, case: FailureCase
):
    twilio.answers.append(case.canned)

    result = await make_provider().send(_request())

    assert result.outcome is case.outcome
    assert result.provider_message_id is None
    assert result.error is not None
    assert (result.error.code, result.error.message) == (case.code, case.message)
    assert (result.error.more_info, result.error.details) == (case.more_info, case.details)
    assert result.retry_after_seconds == case.retry_after
    assert len(twilio.requests) == 1  # the SDK never retried


async def test_retry_after_as_http_date(twilio: FakeTwilio, make_provider: ProviderFactory):
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)
    twilio.answers.append(
        Canned(429, _error_body(20429, "Too Many Requests", 429), {"Retry-After": later})
    )

    result = await make_provider().send(_request())

    assert result.outcome is Outcome.RETRYABLE
    assert result.retry_after_seconds is not None
    assert 100 < result.retry_after_seconds <= 120


async def test_concurrent_sends_keep_their_own_retry_after(
    twilio: FakeTwilio, make_provider: ProviderFactory
):
    limited = _error_body(20429, "Too Many Requests", 429)
    waits = {"+14155550001": 3.0, "+14155550002": 30.0}
    for to, seconds in waits.items():
        twilio.answers_by_to[to] = Canned(429, limited, {"Retry-After": str(int(seconds))}, 0.05)
    provider = make_provider()

    results = await asyncio.gather(*(provider.send(_request(to=to)) for to in waits))

    assert [result.retry_after_seconds for result in results] == list(waits.values())


async def test_a_non_json_success_is_ambiguous(twilio: FakeTwilio, make_provider: ProviderFactory):
    twilio.answers.append(Canned(201, "not json"))

    result = await make_provider().send(_request())

    assert result.outcome is Outcome.AMBIGUOUS


async def test_a_timeout_after_the_request_is_ambiguous(
    twilio: FakeTwilio, make_provider: ProviderFactory
):
    twilio.answers.append(Canned(delay=5.0))

    result = await make_provider(timeout_seconds=0.2).send(_request())

    assert result.outcome is Outcome.AMBIGUOUS
    assert result.error is not None
    assert "timed out after the request was sent" in result.error.message
    assert len(twilio.requests) == 1


ERRORS = _vector("twilio_errors.json")
_HINTED_STATUS = {20429: 429, 20003: 401}


@pytest.mark.parametrize("entry", ERRORS["primary_codes"], ids=lambda e: str(e["code"]))
async def test_every_primary_code_on_the_wire(
    twilio: FakeTwilio, make_provider: ProviderFactory, entry: dict[str, Any]
):
    code = entry["code"]
    status = _HINTED_STATUS.get(code, 400)  # http_status_hints in the vector file
    twilio.answers.append(Canned(status, _error_body(code, entry["message"], status)))

    result = await make_provider().send(_request())

    assert result.outcome is classify(code, status)
    assert result.error is not None
    assert (result.error.code, result.error.message) == (code, entry["message"])
    assert result.error.more_info == _docs(code)


# -- transport failures --------------------------------------------------------------------


async def test_connection_refused_is_retryable(make_provider: ProviderFactory):
    provider = make_provider(api_base_url=f"http://127.0.0.1:{closed_port()}")

    result = await provider.send(_request())

    assert result.outcome is Outcome.RETRYABLE
    assert result.error is not None
    assert "before the request was sent" in result.error.message


async def test_dns_failure_is_retryable(make_provider: ProviderFactory):
    provider = make_provider(api_base_url="http://smsrelay-test.invalid")

    result = await provider.send(_request())

    assert result.outcome is Outcome.RETRYABLE


async def test_disconnect_after_the_request_is_ambiguous(make_provider: ProviderFactory):
    async def run(port: int) -> Any:
        return await make_provider(api_base_url=f"http://127.0.0.1:{port}").send(_request())

    result = await with_raw_server(answer_with_nothing, run)

    assert result.outcome is Outcome.AMBIGUOUS
    assert result.error is not None
    assert "after the request was sent" in result.error.message


async def test_a_timeout_before_anything_was_sent_is_retryable(make_provider: ProviderFactory):
    async def run(port: int) -> Any:
        provider = make_provider(api_base_url=f"https://127.0.0.1:{port}", timeout_seconds=0.3)
        return await provider.send(_request())

    result = await with_raw_server(stall, run)

    assert result.outcome is Outcome.RETRYABLE
    assert result.error is not None
    assert "timed out before the request was sent" in result.error.message


# -- fetch, find_sent, verify --------------------------------------------------------------

MESSAGE_SID = "SM" + "a" * 32


def _message(**overrides: Any) -> dict[str, Any]:
    return _message_example("createWoService") | overrides


async def test_fetch_maps_the_message(twilio: FakeTwilio, make_provider: ProviderFactory):
    twilio.answers.append(
        Canned(
            200,
            _message(
                status="undelivered",
                error_code=30003,
                error_message="Unreachable",
                price="-0.00750",
                price_unit="USD",
            ),
        )
    )

    message = await make_provider().fetch(MESSAGE_SID)

    assert twilio.requests[0].method == "GET"
    assert twilio.requests[0].path == f"/2010-04-01/Accounts/{SID}/Messages/{MESSAGE_SID}.json"
    assert message is not None
    assert (message.provider_message_id, message.status) == (MESSAGE_SID, "undelivered")
    assert (message.to, message.body) == (TO, "Hello! 👍")
    assert (message.price, message.price_unit) == ("-0.00750", "USD")
    assert message.created_at == datetime(2015, 7, 30, 20, 12, 31, tzinfo=UTC)
    assert message.error is not None
    assert (message.error.code, message.error.message) == (30003, "Unreachable")
    assert message.error.more_info == _docs(30003)


async def test_fetch_of_an_unknown_sid_is_none(twilio: FakeTwilio, make_provider: ProviderFactory):
    twilio.answers.append(
        Canned(404, _error_body(20404, "The requested resource was not found", 404))
    )

    assert await make_provider().fetch(MESSAGE_SID) is None


@pytest.mark.parametrize(
    ("canned", "raised"),
    [
        (Canned(500, "<html>oops</html>"), ConnectionError),
        (Canned(delay=5.0), ConnectionError),
        (Canned(401, _error_body(20003, "Authenticate", 401)), ProviderConfigError),
    ],
    ids=["500", "timeout", "401"],
)
async def test_fetch_failures_raise(
    twilio: FakeTwilio, make_provider: ProviderFactory, canned: Canned, raised: type[Exception]
):
    twilio.answers.append(canned)

    with pytest.raises(raised):
        await make_provider(timeout_seconds=0.2).fetch(MESSAGE_SID)


def _page(*messages: dict[str, Any]) -> dict[str, Any]:
    return {
        "messages": list(messages),
        "next_page_uri": None,
        "page": 0,
        "page_size": 50,
        "uri": MESSAGES_PATH,
    }


async def test_find_sent_lists_by_to_and_date(twilio: FakeTwilio, make_provider: ProviderFactory):
    inbound = _message(sid="SM" + "b" * 32, direction="inbound", status="received")
    other = _message(sid="SM" + "c" * 32, body="Another text")
    twilio.answers.append(Canned(200, _page(inbound, other, _message(status="delivered"))))
    since = datetime(2015, 7, 30, 22, 12, tzinfo=timezone(timedelta(hours=2)))

    found = await make_provider().find_sent(TO, "Hello! 👍", since)

    [seen] = twilio.requests
    assert (seen.method, seen.path) == ("GET", MESSAGES_PATH)
    assert seen.query == {"To": [TO], "DateSent>": ["2015-07-30T20:12:00Z"], "PageSize": ["50"]}
    assert found is not None
    assert (found.provider_message_id, found.status) == (MESSAGE_SID, "delivered")


async def test_find_sent_follows_the_next_page_on_our_base_url(
    twilio: FakeTwilio, make_provider: ProviderFactory
):
    next_uri = f"{MESSAGES_PATH}?To=%2B14155552345&PageSize=50&Page=1&PageToken=PA1"
    first = _page(_message(sid="SM" + "c" * 32, body="Another text")) | {"next_page_uri": next_uri}
    twilio.answers += [Canned(200, first), Canned(200, _page(_message()))]

    found = await make_provider().find_sent(TO, "Hello! 👍", datetime.now(UTC))

    assert [seen.query.get("PageToken") for seen in twilio.requests] == [None, ["PA1"]]
    assert found is not None
    assert found.provider_message_id == MESSAGE_SID


async def test_find_sent_without_a_match_is_none(
    twilio: FakeTwilio, make_provider: ProviderFactory
):
    twilio.answers.append(Canned(200, _page(_message(body="Another text"))))

    assert await make_provider().find_sent(TO, "Hello! 👍", datetime.now(UTC)) is None


async def test_verify_fetches_the_account(twilio: FakeTwilio, make_provider: ProviderFactory):
    twilio.answers.append(Canned(200, {"sid": SID, "status": "active", "friendly_name": "x"}))

    await make_provider().verify()

    [seen] = twilio.requests
    assert (seen.method, seen.path) == ("GET", f"/2010-04-01/Accounts/{SID}.json")


@pytest.mark.parametrize("status", [401, 403, 404])
async def test_verify_rejects_bad_credentials(
    twilio: FakeTwilio, make_provider: ProviderFactory, status: int
):
    twilio.answers.append(Canned(status, _error_body(20003, "Authenticate", status)))

    with pytest.raises(ProviderConfigError) as raised:
        await make_provider().verify()

    assert raised.value.missing == ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN")
    assert TOKEN not in str(raised.value)


async def test_verify_when_twilio_is_down(twilio: FakeTwilio, make_provider: ProviderFactory):
    twilio.answers.append(Canned(503, "<html>down</html>"))

    with pytest.raises(ConnectionError):
        await make_provider().verify()


# -- configuration and lifecycle -----------------------------------------------------------


def test_a_sender_is_required():
    with pytest.raises(ProviderConfigError) as raised:
        TwilioProvider(
            account_sid=SID, auth_token=TOKEN, messaging_service_sid=None, from_number=None
        )

    assert raised.value.missing == ("TWILIO_MESSAGING_SERVICE_SID", "TWILIO_FROM_PHONE_NUMBER")
    assert "TWILIO_MESSAGING_SERVICE_SID" in str(raised.value)
    assert "TWILIO_FROM_PHONE_NUMBER" in str(raised.value)


def test_credentials_are_required():
    with pytest.raises(ProviderConfigError) as raised:
        TwilioProvider(
            account_sid=SID, auth_token="", messaging_service_sid=SERVICE_SID, from_number=None
        )

    assert raised.value.missing == ("TWILIO_AUTH_TOKEN",)


async def test_is_a_provider_and_closes_twice(make_provider: ProviderFactory):
    provider = make_provider()
    await provider.send(_request())

    await provider.close()
    await provider.close()

    assert isinstance(provider, Provider)
    assert provider.name == "twilio"


async def test_close_before_any_call(make_provider: ProviderFactory):
    await make_provider().close()
