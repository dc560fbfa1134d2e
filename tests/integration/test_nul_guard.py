"""A NUL character anywhere in a request is a 422 naming it, never a 500, nothing stored."""

from __future__ import annotations

import pytest

from smsrelay.api.guards import _is_utf8
from tests.integration.conftest import Api


@pytest.mark.parametrize(
    ("method", "path", "kwargs"),
    [
        ("post", "/api/sms/send", {"json": {"to": "+15005550006", "message": "a\x00b"}}),
        (
            "post",
            "/api/sms/send",
            {"json": {"to": "+15005550006", "message": "hi", "tags": ["x\x00"]}},
        ),
        ("get", "/api/sms/outbox?tag=a%00b", {}),
        ("get", "/api/sms/outbox/a%00b", {}),
        ("post", "/api/sms/outbox/resend", {"json": {"outboxId": "a\x00b"}}),
        ("post", "/api/webhooks/twilio/status", {"data": {"MessageSid": "SM\x00"}}),
    ],
)
async def test_nul_is_refused_with_422(
    api: Api, method: str, path: str, kwargs: dict[str, object]
) -> None:
    response = await getattr(api.client, method)(path, headers=api.auth(), **kwargs)
    assert response.status_code == 422, response.text
    assert "NUL" in response.json()["error"]["message"]
    listing = await api.client.get("/api/sms/outbox", headers=api.auth())
    assert listing.json()["items"] == []


async def test_percent_signs_in_json_text_are_fine(api: Api) -> None:
    response = await api.send(to="+15005550006", message="Save 100%00 today")
    assert response.status_code == 202


@pytest.mark.parametrize(
    "path", ["/api/sms/send", "/api/sms/bulk", "/api/lists", "/api/sms/outbox/resend"]
)
@pytest.mark.parametrize(
    "body",
    [
        b'{"to": "+15005550006", "message": "J\xe9"}',  # Latin-1
        '{"to": "+15005550006", "message": "hi"}'.encode("utf-16"),
    ],
)
async def test_json_that_is_not_utf8_is_a_400_saying_so(api: Api, path: str, body: bytes) -> None:
    headers = {**api.auth(), "Content-Type": "application/json"}
    response = await api.client.post(path, content=body, headers=headers)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "malformed_json"
    assert "UTF-8" in error["message"]
    listing = await api.client.get("/api/sms/outbox", headers=api.auth())
    assert listing.json()["items"] == []


async def test_utf8_text_beyond_ascii_is_fine(api: Api) -> None:
    response = await api.send(to="+15005550006", message="Jé ✓ 😀")
    assert response.status_code == 202
    assert response.json()["message"] == "Jé ✓ 😀"


@pytest.mark.parametrize("offset", [0, 1, 2])
def test_utf8_is_checked_across_slices(offset: int) -> None:
    """A character split across the 1 MiB slices is still UTF-8; a bad byte past one is not."""
    body = b"a" * offset + "é".encode() * (1 << 20)
    assert _is_utf8(body)
    assert not _is_utf8(body + b"\xff")
    assert not _is_utf8(body[: offset + 2 * (1 << 19) + 1])  # ends inside a character
