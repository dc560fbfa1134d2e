"""The MSG91 adapter on the wire: a local fake MSG91, exact requests, every outcome class."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from smsrelay.domain.status import Status
from smsrelay.providers.base import Outcome, Provider, ProviderConfigError, SendRequest
from smsrelay.providers.msg91 import (
    HTTP_STATUSES,
    MSG91_DLR_STATUSES,
    MSG91_ERROR_CODES,
    DeliveryReportError,
    Msg91Config,
    Msg91Provider,
    classify,
    parse_delivery_report,
)
from tests.providers.msg91_fake import AUTH_KEY, FakeMsg91, running_fake_msg91
from tests.providers.wire import (
    Canned,
    answer_with_nothing,
    closed_port,
    closing_all,
    stall,
    with_raw_server,
)

SENDER = "ACMEIN"
ENTITY = "1201159143231234567"
TEMPLATE = "6076bd2ad6fc0531c42bd1a3"
TO = "+919876543210"
MOBILES = "919876543210"
BODY = "Your OTP is 482913. Do not share it. -ACME ✓"


@pytest.fixture
async def msg91() -> AsyncIterator[FakeMsg91]:
    async with running_fake_msg91() as fake:
        yield fake


def _config(base_url: str = "https://control.msg91.com", **overrides: Any) -> Msg91Config:
    fields: dict[str, Any] = {
        "auth_key": AUTH_KEY,
        "sender_id": SENDER,
        "dlt_entity_id": ENTITY,
        "template_id": TEMPLATE,
        "api_base_url": base_url,
    }
    return Msg91Config(**(fields | overrides))


ProviderFactory = Callable[..., Msg91Provider]


@pytest.fixture
async def make_provider(msg91: FakeMsg91) -> AsyncIterator[ProviderFactory]:
    def build(timeout_seconds: float = 2.0, **overrides: Any) -> Msg91Provider:
        base_url = overrides.pop("api_base_url", msg91.base_url)
        return Msg91Provider(_config(base_url, **overrides), timeout_seconds=timeout_seconds)

    async with closing_all(build) as make:
        yield make


def _request(**overrides: Any) -> SendRequest:
    fields: dict[str, Any] = {"to": TO, "body": BODY}
    return SendRequest(**(fields | overrides))


# -- the outgoing request ------------------------------------------------------------------


async def test_send_posts_the_exact_flow_request(msg91: FakeMsg91, make_provider: ProviderFactory):
    result = await make_provider().send(_request())

    assert result.outcome is Outcome.ACCEPTED
    assert result.provider_message_id is not None
    assert len(result.provider_message_id) == 24
    [seen] = msg91.requests
    assert (seen.method, seen.path, seen.query) == ("POST", "/api/v5/flow", {})
    assert seen.headers["authkey"] == AUTH_KEY
    assert seen.headers["Content-Type"] == "application/json"
    assert seen.headers["Accept"] == "application/json"
    assert seen.json == {
        "template_id": TEMPLATE,
        "short_url": "0",
        "sender": SENDER,
        "recipients": [{"mobiles": MOBILES, "var1": BODY}],
    }


async def test_each_send_gets_its_own_request_id(make_provider: ProviderFactory):
    provider = make_provider()

    results = await asyncio.gather(*(provider.send(_request()) for _ in range(3)))

    assert len({result.provider_message_id for result in results}) == 3


@pytest.mark.parametrize(
    ("sender", "body_variable", "expected_sender", "expected_recipient"),
    [
        (None, "var1", SENDER, {"mobiles": MOBILES, "var1": BODY}),
        ("OTPSMS", "var1", "OTPSMS", {"mobiles": MOBILES, "var1": BODY}),
        ("123456", "text", "123456", {"mobiles": MOBILES, "text": BODY}),
    ],
)
async def test_sender_and_body_variable(
    msg91: FakeMsg91,
    make_provider: ProviderFactory,
    sender: str | None,
    body_variable: str,
    expected_sender: str,
    expected_recipient: dict[str, str],
):
    await make_provider(body_variable=body_variable).send(_request(sender=sender))

    [seen] = msg91.requests
    assert seen.json["sender"] == expected_sender
    assert seen.json["recipients"] == [expected_recipient]


async def test_callback_validity_and_outbox_id_are_not_sent(
    msg91: FakeMsg91, make_provider: ProviderFactory
):
    request = _request(
        status_callback_url="https://relay.example.com/cb",
        validity_seconds=600,
        idempotency_key="out_123",
    )

    await make_provider().send(request)

    assert set(msg91.requests[0].json) == {"template_id", "short_url", "sender", "recipients"}


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"to": "9876543210"}, "E.164"),
        ({"to": TO + "\n"}, "E.164"),
        ({"to": "+91 98765 43210"}, "E.164"),
        ({"to": "+0123456789"}, "E.164"),
        ({"sender": "ACME"}, "6-character"),
        ({"sender": "+15005550006"}, "6-character"),
        ({"sender": "ACME-1"}, "6-character"),
    ],
)
async def test_requests_msg91_would_refuse_are_refused_without_a_call(
    msg91: FakeMsg91, make_provider: ProviderFactory, overrides: dict[str, str], reason: str
):
    result = await make_provider().send(_request(**overrides))

    assert result.outcome is Outcome.PERMANENT
    assert result.error is not None
    assert reason in result.error.message
    assert msg91.requests == []


# -- answers and their outcomes ------------------------------------------------------------

OUTCOMES = [
    # (id, canned answer, outcome, error code, error message)
    (
        "401",
        Canned(401, {"type": "error", "message": "Authentication failure"}),
        Outcome.PERMANENT,
        None,
        "Authentication failure",
    ),
    (
        "429",
        Canned(429, {"type": "error", "message": "Too many"}),
        Outcome.RETRYABLE,
        None,
        "Too many",
    ),
    ("408", Canned(408, "timeout"), Outcome.RETRYABLE, None, "HTTP 408 from MSG91"),
    ("500-html", Canned(500, "<html>oops</html>"), Outcome.AMBIGUOUS, None, "HTTP 500 from MSG91"),
    ("502", Canned(502, ""), Outcome.AMBIGUOUS, None, "HTTP 502 from MSG91"),
    ("503-json", Canned(503, {"type": "error"}), Outcome.AMBIGUOUS, None, "HTTP 503 from MSG91"),
    (
        "400-invalid-template",
        Canned(400, {"type": "error", "message": "Invalid template id"}),
        Outcome.PERMANENT,
        None,
        "Invalid template id",
    ),
    ("404", Canned(404, "not here"), Outcome.PERMANENT, None, "HTTP 404 from MSG91"),
    (
        "302",
        Canned(302, "", {"Location": "https://elsewhere.example/"}),
        Outcome.PERMANENT,
        None,
        "HTTP 302 from MSG91",
    ),
    (
        "200-error-unknown-code",
        Canned(200, {"type": "error", "message": "Flow ID is missing", "code": "999"}),
        Outcome.PERMANENT,
        "999",
        "Flow ID is missing",
    ),
    (
        "200-error-311-duplicate",
        Canned(200, {"type": "error", "message": "Duplicate request", "code": "311"}),
        Outcome.AMBIGUOUS,
        "311",
        "Duplicate request",
    ),
    (
        "200-error-306-route-closed",
        Canned(200, {"type": "error", "message": "Route unavailable", "code": 306}),
        Outcome.RETRYABLE,
        "306",
        "Route unavailable",
    ),
    (
        "503-code-301-balance",
        Canned(503, {"type": "error", "message": "Insufficient balance", "code": "301"}),
        Outcome.PERMANENT,
        "301",
        "Insufficient balance",
    ),
    (
        "200-success-without-id",
        Canned(200, {"type": "success"}),
        Outcome.AMBIGUOUS,
        None,
        "MSG91 reported success without a request id",
    ),
    (
        "200-not-json",
        Canned(200, "OK"),
        Outcome.AMBIGUOUS,
        None,
        "MSG91's answer to the send could not be read",
    ),
    (
        "200-unknown-type",
        Canned(200, {"type": "queued", "message": "abc"}),
        Outcome.AMBIGUOUS,
        None,
        "MSG91's answer to the send could not be read",
    ),
]


@pytest.mark.parametrize(
    ("canned", "outcome", "code", "message"),
    [case[1:] for case in OUTCOMES],
    ids=[case[0] for case in OUTCOMES],
)
async def test_answers_map_to_outcomes(
    msg91: FakeMsg91,
    make_provider: ProviderFactory,
    canned: Canned,
    outcome: Outcome,
    code: str | None,
    message: str,
):
    msg91.answers.append(canned)

    result = await make_provider().send(_request())

    assert result.outcome is outcome
    assert result.provider_message_id is None
    assert result.error is not None
    assert (result.error.code, result.error.message) == (code, message)
    assert len(msg91.requests) == 1  # never retried, never redirected


@pytest.mark.parametrize("code", sorted(MSG91_ERROR_CODES), ids=str)
async def test_every_error_code_on_the_wire(
    msg91: FakeMsg91, make_provider: ProviderFactory, code: str
):
    msg91.answers.append(Canned(400, {"type": "error", "message": f"error {code}", "code": code}))

    result = await make_provider().send(_request())

    assert result.outcome is MSG91_ERROR_CODES[code].outcome
    assert result.error is not None
    assert result.error.code == code
    assert result.error.details == {"httpStatus": 400}


@pytest.mark.parametrize(
    ("retry_after", "expected"), [("7", 7.0), ("0", 0.0), ("soon", None), (None, None)]
)
async def test_retry_after_on_429(
    msg91: FakeMsg91,
    make_provider: ProviderFactory,
    retry_after: str | None,
    expected: float | None,
):
    headers = {"Retry-After": retry_after} if retry_after else {}
    msg91.answers.append(Canned(429, {"type": "error"}, headers))

    result = await make_provider().send(_request())

    assert result.outcome is Outcome.RETRYABLE
    assert result.retry_after_seconds == expected


async def test_retry_after_as_an_http_date(msg91: FakeMsg91, make_provider: ProviderFactory):
    msg91.answers.append(Canned(429, {}, {"Retry-After": "Wed, 21 Oct 2099 07:28:00 GMT"}))

    result = await make_provider().send(_request())

    assert result.retry_after_seconds is not None
    assert result.retry_after_seconds > 86_400


async def test_retry_after_is_dropped_unless_retryable(
    msg91: FakeMsg91, make_provider: ProviderFactory
):
    msg91.answers.append(Canned(503, "busy", {"Retry-After": "30"}))

    result = await make_provider().send(_request())

    assert (result.outcome, result.retry_after_seconds) == (Outcome.AMBIGUOUS, None)


async def test_a_wrong_auth_key_is_permanent(msg91: FakeMsg91, make_provider: ProviderFactory):
    result = await make_provider(auth_key="wrong-key-0000").send(_request())

    assert result.outcome is Outcome.PERMANENT
    assert msg91.requests[0].headers["authkey"] == "wrong-key-0000"


async def test_provider_text_is_scrubbed_of_numbers_and_the_key(
    msg91: FakeMsg91, make_provider: ProviderFactory
):
    echo = f"Invalid mobile {MOBILES} for key {AUTH_KEY}"
    msg91.answers.append(Canned(400, {"type": "error", "message": echo, "code": "202"}))

    result = await make_provider().send(_request())

    assert result.error is not None
    assert MOBILES not in result.error.message
    assert AUTH_KEY not in result.error.message
    assert "[redacted]" in result.error.message


def test_classify_falls_back_on_the_http_status():
    assert classify(None, 503) is Outcome.AMBIGUOUS
    assert classify("123456", 504) is Outcome.AMBIGUOUS
    assert classify(None, 422) is Outcome.PERMANENT
    assert classify(None, None) is Outcome.PERMANENT
    assert classify("311", 200) is Outcome.AMBIGUOUS


@pytest.mark.parametrize(
    "table", [MSG91_ERROR_CODES, HTTP_STATUSES], ids=["codes", "http-statuses"]
)
def test_every_table_entry_has_a_reason_and_a_source(table: dict[Any, Any]):
    for entry in table.values():
        assert entry.reason
        assert entry.source


# -- transport failures --------------------------------------------------------------------


async def test_connection_refused_is_retryable(make_provider: ProviderFactory):
    provider = make_provider(api_base_url=f"http://127.0.0.1:{closed_port()}")

    result = await provider.send(_request())

    assert result.outcome is Outcome.RETRYABLE
    assert result.error is not None
    assert result.error.message.endswith("before the request was sent")


async def test_a_timeout_after_the_request_is_ambiguous(
    msg91: FakeMsg91, make_provider: ProviderFactory
):
    msg91.answers.append(Canned(delay=5.0))

    result = await make_provider(timeout_seconds=0.2).send(_request())

    assert result.outcome is Outcome.AMBIGUOUS
    assert result.error is not None
    assert result.error.message == "MSG91 request timed out after the request was sent"
    assert len(msg91.requests) == 1


async def test_disconnect_after_the_request_is_ambiguous(make_provider: ProviderFactory):
    async def run(port: int) -> Any:
        return await make_provider(api_base_url=f"http://127.0.0.1:{port}").send(_request())

    result = await with_raw_server(answer_with_nothing, run)

    assert result.outcome is Outcome.AMBIGUOUS
    assert result.error.message.endswith("after the request was sent")


async def test_a_timeout_before_anything_was_sent_is_retryable(make_provider: ProviderFactory):
    async def run(port: int) -> Any:
        provider = make_provider(api_base_url=f"https://127.0.0.1:{port}", timeout_seconds=0.3)
        return await provider.send(_request())

    result = await with_raw_server(stall, run)

    assert result.outcome is Outcome.RETRYABLE
    assert result.error.message == "MSG91 request timed out before the request was sent"


# -- look-ups and verify -------------------------------------------------------------------


async def test_look_ups_have_no_answer_and_make_no_call(
    msg91: FakeMsg91, make_provider: ProviderFactory
):
    provider = make_provider()

    assert await provider.fetch("3364" + "0" * 20) is None
    assert await provider.find_sent(TO, BODY, datetime.now(UTC)) is None
    assert provider.can_look_up_messages is False
    assert msg91.requests == []


async def test_verify_checks_the_transactional_balance(
    msg91: FakeMsg91, make_provider: ProviderFactory
):
    await make_provider().verify()

    [seen] = msg91.requests
    assert (seen.method, seen.path, seen.body) == ("GET", "/api/balance.php", b"")
    assert seen.query == {"authkey": [AUTH_KEY], "type": ["4"]}
    assert seen.headers["authkey"] == AUTH_KEY


@pytest.mark.parametrize(
    "canned",
    [
        Canned(401, {"msgType": "error", "msg": "Authentication failure"}),
        Canned(403, "Forbidden"),
        Canned(200, {"msgType": "error", "msg": "Authentication failure", "code": "207"}),
        Canned(200, {"type": "error", "message": "IP not whitelisted", "code": "418"}),
        Canned(200, f"Invalid key {AUTH_KEY}"),
    ],
    ids=["401", "403", "200-auth-failure", "200-ip", "200-echo"],
)
async def test_verify_rejects_bad_credentials(
    msg91: FakeMsg91, make_provider: ProviderFactory, canned: Canned
):
    msg91.answers.append(canned)

    with pytest.raises(ProviderConfigError) as raised:
        await make_provider().verify()

    assert raised.value.missing == ("MSG91_AUTH_KEY",)
    assert "MSG91_AUTH_KEY" in str(raised.value)
    assert AUTH_KEY not in str(raised.value)


async def test_verify_with_the_fakes_own_key_check(make_provider: ProviderFactory):
    with pytest.raises(ProviderConfigError):
        await make_provider(auth_key="not-the-key").verify()


@pytest.mark.parametrize("canned", [Canned(503, "down"), Canned(delay=5.0)], ids=["503", "timeout"])
async def test_verify_when_msg91_gives_no_answer(
    msg91: FakeMsg91, make_provider: ProviderFactory, canned: Canned
):
    msg91.answers.append(canned)

    with pytest.raises(ConnectionError) as raised:
        await make_provider(timeout_seconds=0.2).verify()

    assert AUTH_KEY not in str(raised.value)


async def test_verify_when_msg91_is_unreachable_never_shows_the_key(
    make_provider: ProviderFactory,
):
    provider = make_provider(api_base_url=f"http://127.0.0.1:{closed_port()}")

    with pytest.raises(ConnectionError) as raised:
        await provider.verify()

    assert AUTH_KEY not in str(raised.value)
    assert raised.value.__cause__ is None
    assert raised.value.__suppress_context__


# -- configuration and lifecycle -----------------------------------------------------------

CONFIG_ERRORS = [
    ({"auth_key": ""}, ("MSG91_AUTH_KEY",)),
    ({"auth_key": "   "}, ("MSG91_AUTH_KEY",)),
    ({"auth_key": "abc\r\nX-Injected: 1"}, ("MSG91_AUTH_KEY",)),
    ({"sender_id": "ACME"}, ("MSG91_SENDER_ID",)),
    ({"sender_id": "ACMEIN\n"}, ("MSG91_SENDER_ID",)),
    ({"sender_id": "ACMEINDIA"}, ("MSG91_SENDER_ID",)),
    ({"sender_id": "ACME-1"}, ("MSG91_SENDER_ID",)),
    ({"sender_id": ""}, ("MSG91_SENDER_ID",)),
    ({"dlt_entity_id": ""}, ("MSG91_DLT_ENTITY_ID",)),
    ({"dlt_entity_id": "TM-12AB"}, ("MSG91_DLT_ENTITY_ID",)),
    ({"template_id": ""}, ("MSG91_TEMPLATE_ID",)),
    ({"template_id": "has space"}, ("MSG91_TEMPLATE_ID",)),
    ({"api_base_url": "control.msg91.com"}, ("MSG91_API_BASE_URL",)),
    ({"body_variable": "var 1"}, ("body_variable",)),
    ({"auth_key": "", "sender_id": "X"}, ("MSG91_AUTH_KEY", "MSG91_SENDER_ID")),
]


@pytest.mark.parametrize(("overrides", "missing"), CONFIG_ERRORS)
def test_bad_settings_are_named(overrides: dict[str, str], missing: tuple[str, ...]):
    with pytest.raises(ProviderConfigError) as raised:
        _config(**overrides)

    assert raised.value.missing == missing
    for name in missing:
        assert name in str(raised.value)


def test_the_auth_key_never_shows():
    config = _config()

    assert AUTH_KEY not in repr(config)
    assert AUTH_KEY not in repr(Msg91Provider(config))


def test_defaults():
    config = _config()

    assert config.api_base_url == "https://control.msg91.com"
    assert config.body_variable == "var1"


def test_built_outside_a_loop_without_a_session():
    provider = Msg91Provider(_config())

    assert isinstance(provider, Provider)
    assert provider.name == "msg91"


async def test_closes_twice_and_before_use(make_provider: ProviderFactory):
    unused = make_provider()
    await unused.close()

    used = make_provider()
    await used.send(_request())
    await used.close()
    await used.close()


async def test_a_trailing_slash_in_the_base_url(msg91: FakeMsg91, make_provider: ProviderFactory):
    await make_provider(api_base_url=msg91.base_url + "/").send(_request())

    assert msg91.requests[0].path == "/api/v5/flow"


# -- delivery reports ----------------------------------------------------------------------

V2_DATA = (
    '[{"senderId":"ACMEIN","requestId":"3364427a6c3058373530393831",'
    '"report":[{"date":"2024-05-22 10:06:20","amount":"0.01","clientid":"","INMSID":"0",'
    '"CRQID":"0","ctCode":"900","number":"919876543210","credit":"1","status":"1",'
    '"desc":"DELIVERED","failedReason":""},'
    '{"date":"2024-05-22 10:07:01","number":"919876500000","status":"2",'
    '"desc":"FAILED","failedReason":"Absent subscriber"}],'
    '"userId":"270000","campaignName":"API"}]'
)
V3 = {
    "date": "2024-05-22 09:58:16",
    "number": "919876543210",
    "senderId": "ACMEIN",
    "amount": "0.01",
    "requestId": "3364427a6c3058373530393832",
    "INMSID": "0",
    "CRQID": "0",
    "credit": "1",
    "userId": "270000",
    "campaignName": "API",
    "status": "16",
    "desc": "REJECTED",
}
IST_10_06_20 = datetime(2024, 5, 22, 4, 36, 20, tzinfo=UTC)


def test_a_v2_form_body_is_parsed():
    first, second = parse_delivery_report({"data": V2_DATA})

    assert first.request_id == "3364427a6c3058373530393831"
    assert first.number == "919876543210"
    assert (first.status, first.raw_status, first.description) == (
        Status.DELIVERED,
        "1",
        "DELIVERED",
    )
    assert first.timestamp == IST_10_06_20
    assert first.error is None
    assert (second.status, second.description) == (
        Status.UNDELIVERED,
        "FAILED: Absent subscriber",
    )
    assert second.error is not None
    assert (second.error.code, second.error.message) == ("2", "FAILED: Absent subscriber")


def test_the_decoded_v2_list_and_a_single_request_object_are_parsed():
    decoded = json.loads(V2_DATA)

    assert parse_delivery_report(decoded) == parse_delivery_report({"data": V2_DATA})
    assert parse_delivery_report(decoded[0]) == parse_delivery_report(decoded)
    assert parse_delivery_report({"data": decoded}) == parse_delivery_report(decoded)


def test_a_v3_object_is_parsed():
    [report] = parse_delivery_report(V3)

    assert report.request_id == "3364427a6c3058373530393832"
    assert (report.status, report.raw_status) == (Status.FAILED, "16")
    assert report.timestamp == datetime(2024, 5, 22, 4, 28, 16, tzinfo=UTC)
    assert report.error is not None


@pytest.mark.parametrize(("code", "status"), sorted(MSG91_DLR_STATUSES.items()))
def test_every_report_status_maps(code: str, status: Status):
    [report] = parse_delivery_report(V3 | {"status": code})

    assert report.status is status


@pytest.mark.parametrize("code", ["26", "8", "0", 99])
def test_unknown_report_statuses_map_to_none(code: str | int):
    [report] = parse_delivery_report(V3 | {"status": code})

    assert report.status is None
    assert report.raw_status == str(code)
    assert report.error is None


def test_optional_fields_may_be_missing():
    [report] = parse_delivery_report({"requestId": "abc", "status": 1})

    assert (report.number, report.description, report.timestamp) == (None, None, None)
    assert report.status is Status.DELIVERED


MALFORMED = [
    ([], "non-empty list"),
    ("text", "non-empty list"),
    ([1, 2], "non-empty list"),
    ({"data": "{not json"}, "not JSON"),
    ({"data": '"a string"'}, "non-empty list"),
    ({"status": "1"}, "no requestId"),
    ({"requestId": "", "status": "1"}, "no requestId"),
    ({"requestId": "abc"}, "no status"),
    ({"requestId": "abc", "report": {"status": "1"}}, "list of objects"),
    ({"requestId": "abc", "report": ["1"]}, "list of objects"),
    ({"requestId": "abc", "status": "1", "date": "22/05/2024"}, "YYYY-MM-DD"),
    ({"requestId": ["abc"], "status": "1"}, "unexpected type"),
]


@pytest.mark.parametrize(("payload", "problem"), MALFORMED)
def test_malformed_reports_are_refused(payload: Any, problem: str):
    with pytest.raises(DeliveryReportError, match=problem):
        parse_delivery_report(payload)


def test_report_errors_never_repeat_the_number():
    payload = {"requestId": "abc", "status": "1", "number": "919876543210", "date": "bad"}

    with pytest.raises(DeliveryReportError) as raised:
        parse_delivery_report(payload)

    assert "919876543210" not in str(raised.value)


# -- nothing secret in the logs ------------------------------------------------------------


async def test_no_key_number_or_body_reaches_the_logs(
    msg91: FakeMsg91,
    make_provider: ProviderFactory,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
):
    caplog.set_level(logging.DEBUG)
    provider = make_provider()
    msg91.answers += [Canned(500, "boom"), Canned(401, {"type": "error", "message": AUTH_KEY})]

    for _ in range(3):
        await provider.send(_request())
    await provider.verify()
    parse_delivery_report({"data": V2_DATA})

    captured = capsys.readouterr()
    output = caplog.text + captured.out + captured.err
    for secret in (AUTH_KEY, MOBILES, BODY):
        assert secret not in output
