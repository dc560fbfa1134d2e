"""Adapter tests on the wire: a recording local server with canned answers, and raw sockets.

A provider fake subclasses `RecordingServer`, routes its paths to handlers that `record` the
request and `reply` with a `Canned` answer, and runs under `serving`; `closing_all` closes the
adapters a test made. The raw-socket helpers make the transport failures a real server cannot:
a closed port, a disconnect, a stall.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import parse_qs

from aiohttp import web

from smsrelay.providers.base import Provider


@dataclass
class Canned:
    """One scripted answer: status, body (anything but a str is sent as JSON), headers, delay."""

    status: int = 200
    body: Any = field(default_factory=dict)
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

    @property
    def form(self) -> dict[str, list[str]]:
        return parse_qs(self.body.decode("utf-8"), keep_blank_values=True)


class RecordingServer:
    """What a fake saw, what it will answer next, and its base URL once `serving`."""

    def __init__(self) -> None:
        self.requests: list[Seen] = []
        self.answers: list[Canned] = []
        self.base_url = ""
        self.released = asyncio.Event()  # set at the end: delayed answers stop waiting

    def application(self) -> web.Application:
        raise NotImplementedError

    async def record(self, request: web.Request) -> Seen:
        query = {key: request.query.getall(key) for key in request.query}
        body = await request.read()
        seen = Seen(request.method, request.path, query, dict(request.headers), body)
        self.requests.append(seen)
        return seen

    async def reply(self, answer: Canned) -> web.Response:
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


Fake = TypeVar("Fake", bound=RecordingServer)


@contextlib.asynccontextmanager
async def serving(fake: Fake) -> AsyncIterator[Fake]:
    """Serve `fake` on 127.0.0.1 (a free port) for the duration of the block."""
    # No access log: some providers take the key in the query string, and logs must not show it.
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


P = TypeVar("P", bound=Provider)


@contextlib.asynccontextmanager
async def closing_all(build: Callable[..., P]) -> AsyncIterator[Callable[..., P]]:
    """A factory like `build` whose providers are all closed when the block ends."""
    made: list[P] = []

    def make(*args: Any, **kwargs: Any) -> P:
        provider = build(*args, **kwargs)
        made.append(provider)
        return provider

    try:
        yield make
    finally:
        for provider in made:
            await provider.close()


def closed_port() -> int:
    """A local port nothing listens on: connecting is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def answer_with_nothing(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Read the request's head, then hang up: the request went out, no answer came."""
    await reader.readuntil(b"\r\n\r\n")
    writer.close()


async def stall(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Never answer, not even the TLS handshake: nothing of the request goes out."""
    await reader.read()
    writer.close()


async def with_raw_server(
    handler: Callable[..., Awaitable[None]], run: Callable[[int], Awaitable[Any]]
) -> Any:
    """`run(port)` against a raw TCP server that treats each connection with `handler`."""
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    try:
        return await run(server.sockets[0].getsockname()[1])
    finally:
        server.close()
        await server.wait_closed()
