"""The URL a Twilio webhook was signed over, spelled from the ASGI scope as `request.url` does."""

from __future__ import annotations

import pytest
from starlette.requests import Request

from smsrelay.api.forms import query_value
from smsrelay.api.routes.webhooks import public_url

BASE = "https://sms.example.com"


def request_for(path: str, query: bytes) -> Request:
    headers = [(b"host", b"internal:8000")]
    scope = {"type": "http", "method": "POST", "scheme": "http", "path": path}
    return Request(scope | {"query_string": query, "headers": headers, "server": ("10.0.0.1", 80)})


@pytest.mark.parametrize(
    ("path", "query"),
    [
        ("/api/webhooks/twilio/status", b""),
        ("/api/webhooks/twilio/status", b"outboxId=sms_1"),
        ("/api/webhooks/twilio/status", b"outboxId=sms_1&x=a%20b+c"),
        ("/api/webhooks/twilio/status", b"a=%E2%9C%93&b=caf\xc3\xa9"),
        ("/api/webhooks/twilio/status", b"a=1#fragment"),
        ("/api/webhooks/twilio/inbound", b"weird=?&x=#"),
        ("/api/webhooks/a?b#c\\d", b"q=1"),
    ],
)
def test_public_url_is_what_request_url_would_give(path: str, query: bytes) -> None:
    request = request_for(path, query)
    expected_query = request.url.query
    expected = f"{BASE}{request.url.path}" + (f"?{expected_query}" if expected_query else "")
    assert public_url(request_for(path, query), BASE) == expected


@pytest.mark.parametrize(
    "query",
    [
        b"",
        b"outboxId=sms_1",
        b"outboxId=sms_1&outboxId=sms_2",
        b"outboxId=&x=1",
        b"outboxId",
        b"outbox%49d=sms_%31+x",
        b"x=a%20b+c&outboxId=caf\xc3\xa9",
    ],
)
def test_query_value_is_what_query_params_would_give(query: bytes) -> None:
    request = request_for("/api/webhooks/twilio/status", query)
    assert query_value(request, "outboxId") == request.query_params.get("outboxId")
