"""What the aiohttp adapters share: whether a request went out, transport failures, Retry-After."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from types import SimpleNamespace

import aiohttp

from smsrelay.providers.base import Outcome, ProviderError, SendResult


@dataclass(slots=True)
class Wire:
    """What aiohttp saw during one call, filled in by the hooks of `wire_tracing`."""

    request_started: bool = False
    retry_after: str | None = None


# Trace hooks run inside the calling task, so a context variable ties them to one call, even
# when an SDK makes the request and gives us no way to pass anything along with it.
_current_wire: ContextVar[Wire | None] = ContextVar("smsrelay_provider_wire", default=None)
# Where the moments this task's requests were written go (pacing measures sends by them).
_write_moments: ContextVar[list[float] | None] = ContextVar("smsrelay_request_writes", default=None)


@contextmanager
def watching(wire: Wire) -> Iterator[Wire]:
    """Have the trace hooks fill in `wire` for the requests this task makes inside the block."""
    token = _current_wire.set(wire)
    try:
        yield wire
    finally:
        _current_wire.reset(token)


@contextmanager
def noting_writes(moments: list[float]) -> Iterator[list[float]]:
    """Append to `moments` when (seconds since the epoch) each request this task makes inside
    the block was written to its connection: the moment it left this process. That is its
    first body chunk, which aiohttp writes together with the headers it held back, from a
    task of its own (a request without a body notes nothing)."""
    token = _write_moments.set(moments)
    try:
        yield moments
    finally:
        _write_moments.reset(token)


async def _on_chunk_sent(
    _session: aiohttp.ClientSession,
    _ctx: SimpleNamespace,
    _params: aiohttp.TraceRequestChunkSentParams,
) -> None:
    moments = _write_moments.get()  # the body's task runs in a copy of the caller's context
    if moments is not None:
        moments.append(time.time())


async def _on_headers_sent(
    _session: aiohttp.ClientSession,
    _ctx: SimpleNamespace,
    _params: aiohttp.TraceRequestHeadersSentParams,
) -> None:
    wire = _current_wire.get()
    if wire is not None:
        wire.request_started = True


async def _on_request_end(
    _session: aiohttp.ClientSession,
    _ctx: SimpleNamespace,
    params: aiohttp.TraceRequestEndParams,
) -> None:
    wire = _current_wire.get()
    if wire is not None:
        wire.retry_after = params.response.headers.get("Retry-After")


def wire_tracing() -> aiohttp.TraceConfig:
    """The trace hooks that fill in the `Wire` being watched; give it to the ClientSession."""
    config = aiohttp.TraceConfig()
    config.on_request_headers_sent.append(_on_headers_sent)
    config.on_request_chunk_sent.append(_on_chunk_sent)
    config.on_request_end.append(_on_request_end)
    return config


def transport_failure(
    provider: str, exc: BaseException, wire: Wire, description: str
) -> SendResult:
    """Nothing written yet (refused, DNS, TLS, connect timeout) is safe to retry; else not."""
    never_sent = isinstance(exc, aiohttp.ClientConnectorError) or not wire.request_started
    outcome = Outcome.RETRYABLE if never_sent else Outcome.AMBIGUOUS
    stage = "before the request was sent" if never_sent else "after the request was sent"
    return SendResult(outcome, error=ProviderError(f"{provider} request {description} {stage}"))


def retry_after_for(outcome: Outcome, value: str | None) -> float | None:
    """The wait a Retry-After header asks for, kept only when the outcome is RETRYABLE."""
    return seconds_from_retry_after(value) if outcome is Outcome.RETRYABLE else None


def seconds_from_retry_after(value: str | None) -> float | None:
    """Read Retry-After as delta-seconds or an HTTP date (RFC 9110 §10.2.3)."""
    if not value:
        return None
    seconds: float | None
    try:
        seconds = float(value)
    except ValueError:
        seconds = _seconds_until_http_date(value)
    return max(0.0, seconds) if seconds is not None and math.isfinite(seconds) else None


def _seconds_until_http_date(value: str) -> float | None:
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return (when - datetime.now(UTC)).total_seconds()
