"""A local fake MSG91 server: records every request exactly, answers like flow v5 and balance.php.

By default it behaves like a healthy account: a right `authkey` gets a success with a fresh
24-hex request id (flow) or a balance (balance.php), a wrong one gets 401. Tests queue
`Canned` answers to script anything else (errors, delays, odd bodies).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

AUTH_KEY = "401234AbCdEfGhIjKlMnOp1a2b"  # the shape of an MSG91 auth key, not a real one
BALANCE = "1520"


@dataclass
class Canned:
    """One scripted answer: status, body (a dict is sent as JSON), headers and a delay."""

    status: int = 200
    body: Any = field(default_factory=lambda: {"type": "success", "message": "0" * 24})
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class Seen:
    """One request exactly as it arrived."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


class FakeMsg91:
    """The fake's state: what it saw, what it will answer next, and its base URL."""

    def __init__(self, auth_key: str = AUTH_KEY) -> None:
        self.auth_key = auth_key
        self.requests: list[Seen] = []
        self.answers: list[Canned] = []
        self.base_url = ""
        self.released = asyncio.Event()
        self._ids = (f"{n:024x}" for n in itertools.count(0x3364_6C30_5837_3530_3938_3100))

    def application(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/api/v5/flow", self._flow)
        app.router.add_get("/api/balance.php", self._balance)
        app.router.add_route("*", "/{tail:.*}", self._unknown)
        return app

    async def _flow(self, request: web.Request) -> web.StreamResponse:
        await self._record(request)
        if self.answers:
            return await self._canned(self.answers.pop(0))
        if request.headers.get("authkey") != self.auth_key:
            return web.json_response(
                {"type": "error", "message": "Authentication failure"}, status=401
            )
        return web.json_response({"type": "success", "message": next(self._ids)})

    async def _balance(self, request: web.Request) -> web.StreamResponse:
        await self._record(request)
        if self.answers:
            return await self._canned(self.answers.pop(0))
        if request.query.get("authkey") != self.auth_key:
            return web.json_response(
                {"msgType": "error", "msg": "Authentication failure"}, status=401
            )
        return web.Response(text=BALANCE)

    async def _unknown(self, request: web.Request) -> web.StreamResponse:
        await self._record(request)
        return web.json_response({"type": "error", "message": "Not found"}, status=404)

    async def _record(self, request: web.Request) -> None:
        query = {key: request.query.getall(key) for key in request.query}
        body = await request.read()
        self.requests.append(Seen(request.method, request.path, query, dict(request.headers), body))

    async def _canned(self, answer: Canned) -> web.Response:
        if answer.delay:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.released.wait(), answer.delay)
        is_text = isinstance(answer.body, str)
        return web.Response(
            status=answer.status,
            text=answer.body if is_text else json.dumps(answer.body),
            content_type="text/plain" if is_text else "application/json",
            headers=answer.headers,
        )


@contextlib.asynccontextmanager
async def running_fake_msg91(auth_key: str = AUTH_KEY) -> AsyncIterator[FakeMsg91]:
    """Serve a FakeMsg91 on 127.0.0.1 (a free port) for the duration of the block."""
    fake = FakeMsg91(auth_key)
    # No access log: balance.php takes the key in its query string, and logs must not show it.
    runner = web.AppRunner(fake.application(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    fake.base_url = f"http://{host}:{port}"
    try:
        yield fake
    finally:
        fake.released.set()
        await runner.cleanup()
