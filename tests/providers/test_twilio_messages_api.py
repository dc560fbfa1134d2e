"""The lean create-message call against the official SDK: the same request, the same reading."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from twilio.base.version import Version
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from smsrelay.providers.base import SendRequest
from smsrelay.providers.twilio import TwilioProvider
from smsrelay.providers.twilio.adapter import _http_status, _provider_error
from smsrelay.providers.twilio.messages_api import (
    Answer,
    answer_error,
    basic_authorization,
    create_form,
)
from tests.providers.test_twilio_adapter import (
    CALLBACK,
    FAILURE_CASES,
    FROM,
    SERVICE_SID,
    SID,
    TO,
    TOKEN,
    FakeTwilio,
)
from tests.providers.wire import serving


class _Authorization:
    """The SDK's credential_provider hook, as the adapter uses it for look-ups."""

    def __init__(self, header: str) -> None:
        self.header = header

    def to_auth_strategy(self) -> _Authorization:
        return self

    def get_auth_string(self) -> str:
        return self.header

    def requires_authentication(self) -> bool:
        return True


@pytest.fixture
async def twilio() -> AsyncIterator[FakeTwilio]:
    async with serving(FakeTwilio()) as fake:
        yield fake


@pytest.fixture
async def sdk(twilio: FakeTwilio) -> AsyncIterator[Client]:
    http = AsyncTwilioHttpClient(max_retries=None)
    client = Client(
        SID,
        TOKEN,
        http_client=http,
        credential_provider=_Authorization(basic_authorization(SID, TOKEN)),
        environment={"TWILIO_EDGE": "", "TWILIO_REGION": ""},
    )
    client.api.base_url = twilio.base_url
    yield client
    await http.close()


# (request to send, the SDK's create_async keyword arguments for the same message)
REQUESTS = {
    "service, callback, validity": (
        SendRequest(TO, "Hello! 👍", None, CALLBACK, 600),
        {"to": TO, "body": "Hello! 👍", "messaging_service_sid": SERVICE_SID}
        | {"status_callback": CALLBACK, "validity_period": 600},
    ),
    "From number, no callback": (
        SendRequest(TO, "a&b=c+d %", FROM),
        {"to": TO, "body": "a&b=c+d %", "from_": FROM},
    ),
    "alphanumeric sender, long body": (
        SendRequest(TO, "x" * 1600 + "\n€", "ACMEALERTS", CALLBACK),
        {"to": TO, "body": "x" * 1600 + "\n€", "from_": "ACMEALERTS"}
        | {"status_callback": CALLBACK},
    ),
}


@pytest.mark.parametrize(("request_", "sdk_kwargs"), REQUESTS.values(), ids=REQUESTS.keys())
async def test_the_request_is_byte_for_byte_the_sdks(
    twilio: FakeTwilio, sdk: Client, request_: SendRequest, sdk_kwargs: dict[str, Any]
) -> None:
    provider = TwilioProvider(
        account_sid=SID,
        auth_token=TOKEN,
        messaging_service_sid=SERVICE_SID,
        from_number=None,
        api_base_url=twilio.base_url,
    )
    try:
        await provider.send(request_)
    finally:
        await provider.close()
    await sdk.messages.create_async(**sdk_kwargs)

    ours, theirs = twilio.requests
    assert (ours.method, ours.path, ours.query) == (theirs.method, theirs.path, theirs.query)
    assert ours.body == theirs.body
    assert ours.headers == theirs.headers


def test_a_field_the_sdk_would_not_send_is_refused() -> None:
    with pytest.raises(ValueError, match="MediaUrl"):
        create_form({"To": TO, "Body": "x", "MediaUrl": "https://example.com/a.png"})


def _text(body: Any) -> str:
    return body if isinstance(body, str) else json.dumps(body)


ERROR_BODIES = {
    **{
        name: (case.canned.status, _text(case.canned.body))
        for name, case in FAILURE_CASES.items()
        if case.canned.status >= 300
    },
    "legacy message with leading spaces": (400, _text({"code": 21211, "message": "  Invalid"})),
    "code as a string": (400, _text({"code": "21610", "message": "Unsubscribed"})),
    "code equal to the status": (404, _text({"code": 404, "message": "Not found"})),
    "details that are not an object": (
        400,
        _text({"code": 21211, "message": "x", "details": [1]}),
    ),
    "no message": (400, _text({"code": 21211})),
    "problem body whose status differs": (
        400,
        _text({"type": "", "title": "Slow down", "status": 429, "code": 20429, "errors": []}),
    ),
    "JSON that is a list": (500, "[1, 2]"),
    "JSON that is a string": (400, json.dumps("type title status code")),
    "empty body": (503, ""),
}


@pytest.mark.parametrize(("status", "text"), ERROR_BODIES.values(), ids=ERROR_BODIES.keys())
def test_an_error_answer_reads_as_through_the_sdk(status: int, text: str) -> None:
    response = Response(status, text)
    sdk_error = Version.exception("POST", "/Messages.json", response, "Unable to create record")

    classified_by, error = answer_error(Answer(status, text.encode()))

    assert classified_by == _http_status(sdk_error)
    assert error == _provider_error(sdk_error)
