"""A local fake MSG91 server: records every request exactly, answers like flow v5 and balance.php.

By default it behaves like a healthy account: a right `authkey` gets a success with a fresh
24-hex request id (flow) or a balance (balance.php), a wrong one gets 401. Tests queue
`wire.Canned` answers to script anything else (errors, delays, odd bodies).
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import AsyncIterator

from aiohttp import web

from tests.providers.wire import RecordingServer, serving

AUTH_KEY = "401234AbCdEfGhIjKlMnOp1a2b"  # the shape of an MSG91 auth key, not a real one
BALANCE = "1520"


class FakeMsg91(RecordingServer):
    """The fake's state: what it saw, what it will answer next, and its base URL."""

    def __init__(self, auth_key: str = AUTH_KEY) -> None:
        super().__init__()
        self.auth_key = auth_key
        self._ids = (f"{n:024x}" for n in itertools.count(0x3364_6C30_5837_3530_3938_3100))

    def application(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/api/v5/flow", self._flow)
        app.router.add_get("/api/balance.php", self._balance)
        app.router.add_route("*", "/{tail:.*}", self._unknown)
        return app

    async def _flow(self, request: web.Request) -> web.StreamResponse:
        await self.record(request)
        if self.answers:
            return await self.reply(self.answers.pop(0))
        if request.headers.get("authkey") != self.auth_key:
            return web.json_response(
                {"type": "error", "message": "Authentication failure"}, status=401
            )
        return web.json_response({"type": "success", "message": next(self._ids)})

    async def _balance(self, request: web.Request) -> web.StreamResponse:
        await self.record(request)
        if self.answers:
            return await self.reply(self.answers.pop(0))
        if request.query.get("authkey") != self.auth_key:
            return web.json_response(
                {"msgType": "error", "msg": "Authentication failure"}, status=401
            )
        return web.Response(text=BALANCE)

    async def _unknown(self, request: web.Request) -> web.StreamResponse:
        await self.record(request)
        return web.json_response({"type": "error", "message": "Not found"}, status=404)


@contextlib.asynccontextmanager
async def running_fake_msg91(auth_key: str = AUTH_KEY) -> AsyncIterator[FakeMsg91]:
    """Serve a FakeMsg91 on 127.0.0.1 (a free port) for the duration of the block."""
    async with serving(FakeMsg91(auth_key)) as fake:
        yield fake
