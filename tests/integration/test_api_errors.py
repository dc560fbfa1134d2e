"""Every bad input gets a 4xx JSON error naming what to change, and writes nothing."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from smsrelay.api.app import create_app
from smsrelay.services.tenants import revoke_key
from smsrelay.store.outbox import OutboxRepository
from tests.integration.conftest import Api


async def _outbox_size(api: Api) -> int:
    async with api.container.db.transaction() as connection:
        counts = await OutboxRepository(connection).count_by_status()
    return sum(counts.values())


def _error(response: Any) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "details"}, body
    error: dict[str, Any] = body["error"]
    return error


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"message": "Hello"}, "to"),
        ({"to": "+15005550006"}, "message"),
        ({"to": "+15005550006", "message": "Hi", "colour": "red"}, "colour"),
        ({"to": "not a number", "message": "Hi"}, "to"),
        ({"to": "4155552671", "message": "Hi"}, "to"),
        ({"to": "+1415555", "message": "Hi"}, "to"),
        ({"to": "+442071838750", "message": "Hi"}, "to"),
        ({"to": "+19005550123", "message": "Hi"}, "to"),
        ({"to": "+15005550006", "message": ""}, "message"),
        ({"to": "+15005550006", "message": "   "}, "message"),
        ({"to": "+15005550006", "message": "x" * 1601}, "message"),
        ({"to": "+15005550006", "message": "😀" * 801}, "message"),
        ({"to": "+15005550006", "message": "Hi", "category": "spam"}, "category"),
        ({"to": "+15005550006", "message": "Hi", "tags": "one"}, "tags"),
        ({"to": "+15005550006", "message": "Hi", "tags": [""]}, "tags.0"),
        ({"to": "+15005550006", "message": "Hi", "validitySeconds": 0}, "validitySeconds"),
        ({"to": "+15005550006", "message": "Hi", "scheduledAt": "tomorrow"}, "scheduledAt"),
        (
            {"to": "+15005550006", "message": "Hi", "scheduledAt": "2030-01-01T09:00:00"},
            "scheduledAt",
        ),
        ({"to": 15005550006, "message": "Hi"}, "to"),
        ({"to": "+15005550006", "message": ["Hi"]}, "message"),
    ],
)
async def test_invalid_send_is_422_naming_the_field(
    api: Api, body: dict[str, Any], field: str
) -> None:
    response = await api.send(**body)
    assert response.status_code == 422, response.text
    error = _error(response)
    assert field in error["message"]
    assert await _outbox_size(api) == 0


async def test_message_at_the_limit_is_accepted(api: Api) -> None:
    response = await api.send(to="+15005550006", message="x" * 1600)
    assert response.status_code == 202
    assert response.json()["smsUnitsUsed"] == 11


async def test_over_limit_error_says_limit_and_size(api: Api) -> None:
    error = _error(await api.send(to="+15005550006", message="x" * 1700))
    assert "1700" in error["message"] and "1600" in error["message"]
    assert error["details"]["limit"] == 1600


async def test_malformed_json_is_400(api: Api) -> None:
    response = await api.client.post(
        "/api/sms/send",
        content=b'{"to": "+15005550006",',
        headers={**api.auth(), "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert _error(response)["code"] == "malformed_json"


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", ""])
async def test_wrong_content_type_is_415(api: Api, content_type: str) -> None:
    headers = {**api.auth(), "Content-Type": content_type}
    response = await api.client.post(
        "/api/sms/send", content=b'{"to": "+15005550006", "message": "Hi"}', headers=headers
    )
    assert response.status_code == 415
    assert "application/json" in _error(response)["message"]
    assert await _outbox_size(api) == 0


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Bearer",
        "Bearer sr_unknown_key",
        "Basic dXNlcjpwYXNz",
        "Bearer nonsense",
        "Bearer sr_000000000000_wrongsecret",
    ],
)
async def test_missing_or_unknown_key_is_401(api: Api, authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    response = await api.client.post(
        "/api/sms/send", json={"to": "+15005550006", "message": "Hi"}, headers=headers
    )
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    _error(response)
    assert await _outbox_size(api) == 0


async def test_key_with_right_prefix_but_wrong_secret_is_401(api: Api) -> None:
    forged = api.api_key[:-4] + "AAAA"
    response = await api.client.get("/api/sms/outbox", headers=api.auth(forged))
    assert response.status_code == 401


async def test_revoked_key_is_401_and_says_so(api: Api) -> None:
    principal_key_id = (await api.send(to="+15005550006", message="Hi")).json()["userId"]
    await revoke_key(api.container.db, principal_key_id, cache=api.container.key_cache)
    response = await api.send(to="+15005550006", message="Hi")
    assert response.status_code == 401
    assert "revoked" in _error(response)["message"]


async def test_unknown_route_and_method_are_json_errors(api: Api) -> None:
    assert _error(await api.client.get("/api/nope"))["code"] == "not_found"
    response = await api.client.delete("/api/sms/send", headers=api.auth())
    assert response.status_code == 405
    _error(response)


@pytest.mark.parametrize(
    "query",
    [
        "status=bogus",
        "limit=0",
        "limit=1000",
        "cursor=%%%",
        "cursor=bm90LWEtY3Vyc29y",
        "createdFrom=yesterday",
        "createdFrom=2026-01-01T00:00:00",
    ],
)
async def test_bad_list_queries_are_422(api: Api, query: str) -> None:
    response = await api.client.get(f"/api/sms/outbox?{query}", headers=api.auth())
    assert response.status_code == 422, response.text
    _error(response)


async def test_other_tenants_entry_is_404(api: Api) -> None:
    from smsrelay.services.tenants import create_tenant

    entry = (await api.send(to="+15005550006", message="Hi")).json()
    other = await create_tenant(api.container.db, "other")
    response = await api.client.get(
        f"/api/sms/outbox/{entry['outboxId']}", headers=api.auth(other.api_key)
    )
    assert response.status_code == 404
    listing = await api.client.get("/api/sms/outbox", headers=api.auth(other.api_key))
    assert listing.json()["items"] == []


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (b'{"to": "+15005550006", "message": "lone \\ud800"}', "message"),
        (b'{"to": "+15005550006", "message": "x", "customData": {"k": "\\ud800"}}', "customData"),
        (b'{"to": "+15005550006", "message": "x", "customData": {"k": NaN}}', "customData"),
        (b'{"to": "+15005550006", "message": "x", "customData": {"k": 1e400}}', "customData"),
        (
            b'{"to": "+15005550006", "message": "x", "customData": {"k": "' + b"a" * 9000 + b'"}}',
            "customData",
        ),
        (
            b'{"to": "+15005550006", "message": "x", "scheduledAt": "9999-12-31T23:59:59+00:00"}',
            "scheduledAt",
        ),
        (
            b'{"to": "+15005550006", "message": "x", "scheduledAt": "0001-01-01T00:00:00+14:00"}',
            "scheduledAt",
        ),
    ],
)
async def test_unstorable_values_are_422_and_nothing_is_stored(
    api: Api, raw: bytes, field: str
) -> None:
    response = await api.client.post(
        "/api/sms/send", content=raw, headers={**api.auth(), "Content-Type": "application/json"}
    )
    assert response.status_code == 422, response.text
    assert field in _error(response)["message"]
    assert await _outbox_size(api) == 0


async def test_a_body_over_one_mebibyte_is_413(api: Api) -> None:
    response = await api.client.post(
        "/api/sms/send",
        content=b'{"to": "' + b"1" * (1024 * 1024) + b'"}',
        headers={**api.auth(), "Content-Type": "application/json"},
    )
    assert response.status_code == 413
    error = _error(response)
    assert error["code"] == "body_too_large"
    assert error["details"] == {"limit": 1024 * 1024}
    assert "1048576 bytes" in error["message"]


async def test_a_bulk_body_may_be_larger_but_not_over_its_own_limit(api: Api) -> None:
    headers = {**api.auth(), "Content-Type": "application/json"}
    recipients = b'["+15005550006"' + b', "+15005550006"' * 100_000 + b"]"
    body = b'{"message": "Hi", "recipients": ' + recipients + b"}"  # ~1.8 MB: accepted
    response = await api.client.post("/api/sms/bulk", content=body, headers=headers)
    assert response.status_code != 413
    limit = 64 * 1024 * 1024
    response = await api.client.post(
        "/api/sms/bulk", content=b'{"message": "' + b"x" * limit + b'"}', headers=headers
    )
    assert response.status_code == 413
    assert _error(response)["details"] == {"limit": limit}
    assert f"{limit} bytes" in _error(response)["message"]


@pytest.mark.parametrize(
    "query",
    [
        "createdFrom=0001-01-01T00:00:00%2B14:00",
        "createdTo=9999-12-31T23:59:59-14:00",
        # cursors this API never returns: no UTC offset, or no id
        "cursor=MjAyNi0xMS0yMlQwNjoyNToxNnxzbXNfeA",
        "cursor=MjAyNi0xMS0yMlQwNjoyNToxNiswMDowMHw",
    ],
)
async def test_out_of_range_list_queries_are_422(api: Api, query: str) -> None:
    response = await api.client.get(f"/api/sms/outbox?{query}", headers=api.auth())
    assert response.status_code == 422, response.text
    _error(response)


async def test_an_unexpected_error_is_a_json_500_without_details(api: Api) -> None:
    async def broken() -> None:
        raise RuntimeError("boom with +14155552671")

    app = create_app(api.container, manage=False)
    app.add_api_route("/boom", broken)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        response = await client.get("/boom")
    assert response.status_code == 500
    error = _error(response)
    assert error["code"] == "internal_error" and "boom" not in error["message"]
