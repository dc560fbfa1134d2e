"""What the aiohttp adapters share: Retry-After (seconds or an HTTP date, kept only to retry),
and the moment a request is written, refused past its deadline."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import aiohttp
import pytest
from aiohttp import web

from smsrelay.providers.base import Outcome
from smsrelay.providers.http_support import (
    Wire,
    Writes,
    noting_writes,
    retry_after_for,
    seconds_from_retry_after,
    transport_failure,
    watching,
    wire_tracing,
)

RETRY_AFTER = [
    # (header value, seconds it asks for)
    ("7", 7.0),
    ("0", 0.0),
    ("1.5", 1.5),
    ("-3", 0.0),  # never a wait in the past
    ("inf", None),
    ("nan", None),
    ("soon", None),
    ("", None),
    (None, None),
    ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),  # an HTTP date already past
]


@pytest.mark.parametrize(("value", "seconds"), RETRY_AFTER)
def test_retry_after_values(value: str | None, seconds: float | None) -> None:
    assert seconds_from_retry_after(value) == seconds


def test_retry_after_as_a_future_http_date() -> None:
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)

    seconds = seconds_from_retry_after(later)

    assert seconds is not None
    assert 100 < seconds <= 120


@pytest.mark.parametrize("outcome", [o for o in Outcome if o is not Outcome.RETRYABLE])
def test_retry_after_is_kept_only_for_a_retry(outcome: Outcome) -> None:
    assert retry_after_for(Outcome.RETRYABLE, "30") == 30.0
    assert retry_after_for(outcome, "30") is None


@pytest.fixture
async def counting_server() -> AsyncIterator[tuple[str, list[bytes]]]:
    """A local HTTP server that keeps every request body it receives."""
    received: list[bytes] = []

    async def handle(request: web.Request) -> web.Response:
        received.append(await request.read())
        return web.json_response({"sid": "SM1"}, status=201)

    app = web.Application()
    app.router.add_post("/send", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}/send", received
    finally:
        await runner.cleanup()


async def _post(url: str, writes: Writes) -> Wire:
    wire = Wire()
    async with aiohttp.ClientSession(trace_configs=[wire_tracing()]) as session:
        with watching(wire), noting_writes(writes):
            async with session.post(url, data={"Body": "hi"}) as response:
                await response.read()
    return wire


async def test_the_moment_a_request_is_written_is_noted(
    counting_server: tuple[str, list[bytes]],
) -> None:
    url, received = counting_server
    before = time.time()
    writes = Writes(deadline=before + 60)
    wire = await _post(url, writes)
    assert len(received) == 1 and wire.request_started
    assert len(writes.moments) == 1 and before <= writes.moments[0] <= time.time()
    assert not writes.refused


async def test_a_request_past_its_deadline_never_leaves(
    counting_server: tuple[str, list[bytes]],
) -> None:
    """Refused at the socket: the server sees nothing, and the failure reads as never sent
    (safe to retry), not as ambiguous."""
    url, received = counting_server
    writes = Writes(deadline=time.time() - 0.001)
    wire = Wire()
    with pytest.raises(aiohttp.ClientConnectionError) as raised:
        wire = await _post(url, writes)
    assert writes.refused and writes.moments == []
    await asyncio.sleep(0.05)
    assert received == []
    assert not wire.request_started
    failure = transport_failure("Twilio", raised.value, wire, "failed")
    assert failure.outcome is Outcome.RETRYABLE
