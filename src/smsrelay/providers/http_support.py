"""What the aiohttp adapters share: whether a request went out, transport failures, Retry-After."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
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
_writes: ContextVar[Writes | None] = ContextVar("smsrelay_request_writes", default=None)


@dataclass(slots=True)
class Writes:
    """The moments (seconds since the epoch) a task's requests were written to their connection,
    and the latest moment the first may be: a request that would be written after `deadline`
    is refused before a byte of it leaves (`refused`), and fails as never sent."""

    deadline: float | None = None
    moments: list[float] = field(default_factory=list)
    refused: bool = False


class LateWrite(Exception):
    """A request reached its connection after its deadline; nothing of it was written."""


@contextmanager
def watching(wire: Wire) -> Iterator[Wire]:
    """Have the trace hooks fill in `wire` for the requests this task makes inside the block."""
    token = _current_wire.set(wire)
    try:
        yield wire
    finally:
        _current_wire.reset(token)


@contextmanager
def noting_writes(writes: Writes) -> Iterator[Writes]:
    """Note in `writes` when each request this task makes inside the block is written to its
    connection: the moment it leaves this process. That is its first body chunk, which aiohttp
    writes together with the headers it held back, from a task of its own, right after this
    hook (a request without a body notes nothing)."""
    token = _writes.set(writes)
    try:
        yield writes
    finally:
        _writes.reset(token)


async def _on_chunk_sent(
    _session: aiohttp.ClientSession,
    _ctx: SimpleNamespace,
    _params: aiohttp.TraceRequestChunkSentParams,
) -> None:
    writes = _writes.get()  # the body's task runs in a copy of the caller's context
    if writes is None:
        return
    now = time.time()
    if not writes.moments and writes.deadline is not None and now > writes.deadline:
        writes.refused = True
        wire = _current_wire.get()
        if wire is not None:
            wire.request_started = False  # its headers were only buffered
        raise LateWrite(f"the request reached its connection {now - writes.deadline:.3f} s late")
    writes.moments.append(now)


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
