"""`form_fields` gives what `request.form()` gives, for every body and content type."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.exceptions import HTTPException
from starlette.requests import Request

from smsrelay.api.forms import MAX_FIELDS, URLENCODED, form_fields, split_urlencoded

# Pieces that exercise the parser's edges: separators, `+`, good and bad escapes, raw UTF-8
# and Latin-1 bytes, `;` (not a separator), a name without `=`.
PIECES = [
    b"a",
    b"To",
    b"=",
    b"&",
    b"&&",
    b"+",
    b"%",
    b"%2",
    b"%20",
    b"%2B",
    b"%26",
    b"%3D",
    b"%e2%9c%93",
    b"%E2%9C",
    b"%zz",
    b"%C3%A9",
    b"\xc3\xa9",
    b"\xe9",
    b";",
    b" ",
    b"+1415",
]


def request_with(body: bytes, content_type: str | None) -> Request:
    headers = [] if content_type is None else [(b"content-type", content_type.encode("latin-1"))]
    delivered = False

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if delivered:
            return {"type": "http.disconnect"}
        delivered = True
        return {"type": "http.request", "body": body, "more_body": False}

    scope = {"type": "http", "method": "POST", "path": "/", "headers": headers, "app": object()}
    return Request(scope, receive)


async def starlette_fields(body: bytes, content_type: str | None) -> list[tuple[str, str]]:
    form = await request_with(body, content_type).form()
    return [(name, str(value)) for name, value in form.multi_items()]


async def ours(body: bytes, content_type: str | None) -> list[tuple[str, str]]:
    return await form_fields(request_with(body, content_type))


@given(st.lists(st.sampled_from(PIECES), max_size=30).map(b"".join))
async def test_a_urlencoded_body_gives_the_fields_starlette_gives(body: bytes) -> None:
    assert await ours(body, URLENCODED) == await starlette_fields(body, URLENCODED)


@given(st.lists(st.sampled_from(PIECES), max_size=30).map(b"".join))
def test_split_urlencoded_is_parse_qsl_keeping_blank_values(body: bytes) -> None:
    text = body.decode("latin-1")
    assert split_urlencoded(text) == parse_qsl(text, keep_blank_values=True)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"MessageSid=SM1&MessageStatus=delivered",
        b"To=%2B14155550100&Body=caf%C3%A9+%26+more",
        b"a=1&a=2&b&=c&&d=",
        b"&a=1&",
        b"a=1;b=2",
        b"x=%zz&y=%E2%9C",
        b"raw=\xc3\xa9\xe9",
    ],
)
@pytest.mark.parametrize(
    "content_type",
    [
        URLENCODED,
        "Application/X-WWW-Form-URLEncoded",
        f"{URLENCODED}; charset=utf-8",
        f" {URLENCODED}\t",
        f"{URLENCODED} ; charset=utf-8",
        "application/json",
        "text/plain",
        None,
    ],
)
async def test_every_content_type_gives_what_starlette_gives(
    body: bytes, content_type: str | None
) -> None:
    assert await ours(body, content_type) == await starlette_fields(body, content_type)


async def test_a_multipart_form_is_read_by_starlette() -> None:
    body = (
        b"--b\r\nContent-Disposition: form-data; name=MessageSid\r\n\r\nSM1\r\n"
        b"--b\r\nContent-Disposition: form-data; name=MessageSid\r\n\r\nSM2\r\n--b--\r\n"
    )
    content_type = "multipart/form-data; boundary=b"
    assert await ours(body, content_type) == [("MessageSid", "SM1"), ("MessageSid", "SM2")]


async def test_too_many_fields_is_starlettes_400() -> None:
    body = b"&".join(b"f=%d" % i for i in range(MAX_FIELDS + 1))
    with pytest.raises(HTTPException) as expected:
        await starlette_fields(body, URLENCODED)
    with pytest.raises(HTTPException) as raised:
        await ours(body, URLENCODED)
    assert (raised.value.status_code, raised.value.detail) == (400, expected.value.detail)
    at_limit = b"&".join(b"f=%d" % i for i in range(MAX_FIELDS))
    assert len(await ours(at_limit, URLENCODED)) == MAX_FIELDS
