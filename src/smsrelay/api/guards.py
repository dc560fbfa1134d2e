"""ASGI guard: bodies over 1 MiB get 413, NUL characters anywhere a 422, and JSON bodies that are
not UTF-8 a 400, before any route.

PostgreSQL cannot store U+0000 in text and SMS cannot carry it, so a NUL in the path, the
query, a JSON body (`\\u0000`) or a form body (`%00`) is the caller's mistake, never a 500.
"""

from __future__ import annotations

import codecs
import json
import re
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from smsrelay.api.errors import error_body

_ENCODED = (b"%00", b"\x00")  # paths, queries and form bodies
_JSON = (b"\\u0000", b"\x00")
MAX_BODY_BYTES = 1024 * 1024
# Routes whose JSON bodies may be larger: a bulk send of 100,000 recipients with variables.
LARGER_BODIES: dict[tuple[str, str], int] = {("POST", "/api/sms/bulk"): 64 * 1024 * 1024}
# Routes that read their body as a stream: never buffered here; they refuse NULs (and cap the
# size) themselves. CSV imports into recipient lists.
STREAMED = re.compile(r"/api/lists/[^/]+/import")
NUL = "the request contains a NUL character (U+0000); remove it"


class RefuseNul:
    """Wraps an ASGI app; buffers each HTTP body once to look for NULs."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if _in_target(scope):
            await _refuse(send, 422, "invalid_request", NUL)
            return
        if scope["method"] == "POST" and STREAMED.fullmatch(scope["path"]):
            await self.app(scope, receive, send)
            return
        limit = LARGER_BODIES.get((scope["method"], scope["path"]), MAX_BODY_BYTES)
        body = await _read_body(receive, limit)
        if body is None:
            message = f"the body is larger than {limit} bytes; send less"
            await _refuse(send, 413, "body_too_large", message, {"limit": limit})
            return
        is_json = _is_json(scope)
        if is_json and not _is_utf8(body):  # checked first: UTF-16 would look like NULs
            message = "the body is not UTF-8 text; send the JSON encoded as UTF-8"
            await _refuse(send, 400, "malformed_json", message)
            return
        if any(marker in body for marker in (_JSON if is_json else _ENCODED)):
            await _refuse(send, 422, "invalid_request", NUL)
            return
        await self.app(scope, _replay(body, receive), send)


def _in_target(scope: Scope) -> bool:
    raw_path = scope.get("raw_path") or scope["path"].encode()
    query = scope.get("query_string", b"")
    return any(marker in part for part in (raw_path, query) for marker in _ENCODED)


def _is_json(scope: Scope) -> bool:
    headers = dict(scope.get("headers", []))
    return b"json" in headers.get(b"content-type", b"").lower()


def _is_utf8(body: bytes) -> bool:
    """JSON exchanged between systems is UTF-8 (RFC 8259); anything else is the caller's mistake."""
    if body.isascii():
        return True
    decoder = codecs.getincrementaldecoder("utf-8")()
    step = 1 << 20  # a slice at a time: a 64 MiB bulk body is not copied into one string
    try:
        for start in range(0, len(body), step):
            decoder.decode(body[start : start + step], final=start + step >= len(body))
    except UnicodeDecodeError:
        return False
    return True


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole body, or None once it passes `limit` bytes."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


async def _refuse(send: Send, status: int, code: str, message: str, details: Any = None) -> None:
    payload = json.dumps(error_body(code, message, details), separators=(",", ":")).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})
