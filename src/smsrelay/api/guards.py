"""ASGI guard refusing NUL characters anywhere in a request with a 422 before any route runs.

PostgreSQL cannot store U+0000 in text and SMS cannot carry it, so a NUL in the path, the
query, a JSON body (`\\u0000`) or a form body (`%00`) is the caller's mistake, never a 500.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

_ENCODED = (b"%00", b"\x00")  # paths, queries and form bodies
_JSON = (b"\\u0000", b"\x00")
_ERROR = {
    "error": {
        "code": "invalid_request",
        "message": "the request contains a NUL character (U+0000); remove it",
        "details": None,
    }
}


class RefuseNul:
    """Wraps an ASGI app; buffers each HTTP body once to look for NULs."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if _in_target(scope):
            await _refuse(send)
            return
        body = await _read_body(receive)
        if any(marker in body for marker in _markers(scope)):
            await _refuse(send)
            return
        await self.app(scope, _replay(body, receive), send)


def _in_target(scope: Scope) -> bool:
    raw_path = scope.get("raw_path") or scope["path"].encode()
    query = scope.get("query_string", b"")
    return any(marker in part for part in (raw_path, query) for marker in _ENCODED)


def _markers(scope: Scope) -> tuple[bytes, ...]:
    headers = dict(scope.get("headers", []))
    return _JSON if b"json" in headers.get(b"content-type", b"").lower() else _ENCODED


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
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


async def _refuse(send: Send) -> None:
    payload: Any = json.dumps(_ERROR).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 422,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})
