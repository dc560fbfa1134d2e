"""`POST /api/sms/send` reads its request itself (api/direct.py): it must answer exactly as a route
whose body, key and scope FastAPI resolves. `POST /api/sms/outbox/resend` is such a route (a JSON
body model, the bearer key, the `send` scope), so every request neither body model can tell apart
gets the same status and the same error body from both.
"""

from __future__ import annotations

from typing import Any

import pytest

from smsrelay.api.direct import DirectRoute
from smsrelay.api.routes import sms
from smsrelay.services.tenants import create_key
from tests.integration.conftest import Api

SEND = "/api/sms/send"
DECLARED = "/api/sms/outbox/resend"
JSON = {"Content-Type": "application/json"}

# (body bytes, headers besides the key): requests that neither model can tell apart.
SAME_ANSWER: dict[str, tuple[bytes, dict[str, str]]] = {
    "malformed JSON": (b'{"to": "+15005550006",', JSON),
    "truncated JSON": (b"[", JSON),
    "empty body": (b"", JSON),
    "null": (b"null", JSON),
    "a list": (b"[1, 2]", JSON),
    "a string": (b'"+15005550006"', JSON),
    "a number": (b"42", JSON),
    "not UTF-8": (b'{"to": "\xff\xfe"}', JSON),
    "text/plain": (b'{"to": "+15005550006"}', {"Content-Type": "text/plain"}),
    "no content type": (b'{"to": "+15005550006"}', {}),
    "form": (b"to=%2B15005550006", {"Content-Type": "application/x-www-form-urlencoded"}),
    "JSON with a charset": (b"null", {"Content-Type": "application/json; charset=utf-8"}),
    "nested too deep": (b"[" * 100_000 + b"]" * 100_000, JSON),
    "an integer of 5,000 digits": (b'{"to": ' + b"9" * 5000 + b"}", JSON),
    "malformed +json": (b'{"to": ', {"Content-Type": "application/merge-patch+json"}),
    "well-formed +json": (b"{}", {"Content-Type": "application/merge-patch+json"}),
    "JSON in upper case": (b"{", {"Content-Type": "Application/JSON"}),
}
KEYS = ["valid", "none", "unknown", "basic scheme", "no scope"]


async def _key_headers(api: Api, kind: str) -> dict[str, str]:
    if kind == "valid":
        return api.auth()
    if kind == "none":
        return {}
    if kind == "unknown":
        return {"Authorization": "Bearer sr_live_nope_0000"}
    if kind == "basic scheme":
        return {"Authorization": f"Basic {api.api_key}"}
    issued = await create_key(api.container.db, api.tenant_id, scopes=frozenset({"read"}))
    return {"Authorization": f"Bearer {issued.api_key}"}


def _answer(response: Any) -> tuple[int, Any, str | None]:
    return response.status_code, response.json(), response.headers.get("www-authenticate")


@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize("case", sorted(SAME_ANSWER))
async def test_send_refuses_like_a_declared_route(api: Api, case: str, key: str) -> None:
    body, headers = SAME_ANSWER[case]
    headers = headers | await _key_headers(api, key)
    sent = await api.client.post(SEND, content=body, headers=headers)
    declared = await api.client.post(DECLARED, content=body, headers=headers)
    assert _answer(sent) == _answer(declared)
    assert 400 <= sent.status_code < 500


def test_the_send_route_calls_its_endpoint_directly() -> None:
    (route,) = [r for r in sms.router.routes if getattr(r, "path", None) == SEND]
    assert isinstance(route, DirectRoute) and route.methods == {"POST"}
    assert route.get_route_handler() is sms.send_sms


async def test_field_errors_name_the_field_as_before(api: Api) -> None:
    response = await api.client.post(
        SEND,
        json={"to": 5, "message": "Hi", "category": "spam", "colour": "red"},
        headers=api.auth(),
    )
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    by_field = {problem["field"]: problem["type"] for problem in error["details"]}
    assert by_field == {
        "to": "string_type",
        "category": "literal_error",
        "colour": "extra_forbidden",
    }
    assert error["message"].startswith("to: Input should be a valid string")


async def test_the_send_route_is_documented_as_before(api: Api) -> None:
    schema = (await api.client.get("/openapi.json")).json()
    operation = schema["paths"][SEND]["post"]
    assert operation["security"] == [{"HTTPBearer": []}]
    body = operation["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/SendSmsRequest"}
    documented = schema["components"]["schemas"]["SendSmsRequest"]
    assert {"to", "message", "senderId", "scheduledAt", "overrideSuppression"} <= set(
        documented["properties"]
    )
    assert documented["required"] == ["to", "message"]
    (header,) = operation["parameters"]
    assert (header["name"], header["in"], header["required"]) == (
        "Idempotency-Key",
        "header",
        False,
    )
    assert "202" in operation["responses"] and "402" in operation["responses"]
