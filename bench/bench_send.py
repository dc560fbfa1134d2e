"""Measure `smsrelay serve` end to end: sends accepted per second, sends reaching the simulator
per second, and GET /healthz on the same app at the same concurrency as the baseline.

Starts `smsrelay serve` (SQLite in a temporary directory, in-process dispatcher, the embedded
simulator) as a subprocess, creates a tenant with `smsrelay tenants create`, then drives it with
aiohttp. Run from the repository root:

    .venv/bin/python bench/bench_send.py [--requests 5000] [--concurrency 64]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

RECIPIENT = "+15005550006"  # Twilio's magic "valid" number: the simulator accepts it
DONE = ("sent", "delivered")
STARTUP_SECONDS = 30.0


@dataclass(frozen=True)
class Options:
    requests: int
    concurrency: int
    step_delay: float
    dispatch_concurrency: int | None
    timeout: float
    api_key_rate: int
    started_at: datetime


@dataclass(frozen=True)
class Phase:
    """One load phase: how many answered as expected, wall time, per-request latencies."""

    ok: int
    seconds: float
    latencies: list[float]
    failures: Counter[str]

    @property
    def errors(self) -> int:
        return sum(self.failures.values())

    @property
    def rate(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    def percentile(self, p: int) -> float:
        if len(self.latencies) < 2:
            return self.latencies[0] if self.latencies else 0.0
        return statistics.quantiles(self.latencies, n=100)[p - 1]


@dataclass(frozen=True)
class Dispatch:
    """What reached the simulator, from the outbox entries' own timestamps."""

    done: int
    failed: int
    first_created: datetime
    last_sent: datetime
    first_sent: datetime
    drain_seconds: float

    @property
    def end_to_end_rate(self) -> float:
        """Messages `sent`/`delivered` per second from the first submit to the last send."""
        return self.done / max((self.last_sent - self.first_created).total_seconds(), 1e-9)

    @property
    def sending_rate(self) -> float:
        """Messages per second while the dispatcher was sending (first to last send)."""
        return self.done / max((self.last_sent - self.first_sent).total_seconds(), 1e-9)


def parse_options(argv: list[str]) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", "-n", type=int, default=5000, help="messages to send")
    parser.add_argument("--concurrency", "-c", type=int, default=64, help="requests in flight")
    parser.add_argument(
        "--step-delay", type=float, default=0.01, help="simulator seconds between statuses"
    )
    parser.add_argument(
        "--dispatch-concurrency", type=int, default=None, help="SMSRELAY_DISPATCH_CONCURRENCY"
    )
    parser.add_argument(
        "--api-key-rate",
        type=int,
        default=1_000_000,
        help="requests/second per API key (SMSRELAY_API_KEY_RATE_LIMIT); 100 is the default",
    )
    parser.add_argument("--timeout", type=float, default=600.0, help="give up after (seconds)")
    args = parser.parse_args(argv)
    return Options(
        args.requests,
        args.concurrency,
        args.step_delay,
        args.dispatch_concurrency,
        args.timeout,
        args.api_key_rate,
        datetime.now(UTC),
    )


def smsrelay_executable() -> str:
    beside = Path(sys.executable).with_name("smsrelay")
    return str(beside) if beside.exists() else "smsrelay"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def server_env(workdir: Path, url: str, options: Options) -> dict[str, str]:
    """This shell's environment minus smsrelay/provider settings, plus the bench's."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("SMSRELAY_", "TWILIO_", "MSG91_"))
    }
    env |= {
        "SMSRELAY_DATABASE_URL": f"sqlite:///{workdir / 'bench.db'}",
        "SMSRELAY_PUBLIC_URL": url,
        "SMSRELAY_SIMULATOR_STEP_DELAY": str(options.step_delay),
        # Measure capacity, not the per-key policy (default 100/second).
        "SMSRELAY_API_KEY_RATE_LIMIT": f"{options.api_key_rate}/second",
    }
    if options.dispatch_concurrency is not None:
        env["SMSRELAY_DISPATCH_CONCURRENCY"] = str(options.dispatch_concurrency)
    return env


@contextmanager
def running_server(workdir: Path, port: int, env: dict[str, str]) -> Iterator[Path]:
    """`smsrelay serve` in the background; SIGTERM (then SIGKILL) on the way out."""
    log = workdir / "serve.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [smsrelay_executable(), "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            cwd=workdir,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        yield log
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def create_tenant(workdir: Path, env: dict[str, str]) -> str:
    result = subprocess.run(
        [smsrelay_executable(), "tenants", "create", "bench"],
        env=env,
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    api_key: str = json.loads(result.stdout)["apiKey"]
    return api_key


async def wait_healthy(session: aiohttp.ClientSession, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        try:
            async with session.get("/healthz") as response:
                if response.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.1)
    raise startup_failure(log)


def startup_failure(log: Path) -> RuntimeError:
    return RuntimeError(f"smsrelay serve did not start:\n{log.read_text(errors='replace')}")


Request = Callable[[aiohttp.ClientSession], Awaitable[str | None]]


async def run_phase(
    session: aiohttp.ClientSession, count: int, concurrency: int, request: Request
) -> Phase:
    """`count` calls of `request`, `concurrency` at a time; wall time, latencies, failures.

    `request` returns None when the answer was the expected one, else a short description.
    """
    remaining = iter(range(count))
    latencies: list[float] = []
    failures: Counter[str] = Counter()

    async def worker() -> None:
        for _ in remaining:
            started = time.perf_counter()
            try:
                failure = await request(session)
            except (aiohttp.ClientError, TimeoutError) as exc:
                failure = f"{type(exc).__name__}: {exc}"
            latencies.append(time.perf_counter() - started)
            if failure is not None:
                failures[failure] += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    return Phase(count - sum(failures.values()), elapsed, latencies, failures)


def checked(method: str, path: str, expected: int, body: dict[str, Any] | None = None) -> Request:
    """A request whose failure description is its status and the start of its body."""

    async def request(session: aiohttp.ClientSession) -> str | None:
        async with session.request(method, path, json=body) as response:
            text = await response.text()
            return None if response.status == expected else f"{response.status} {text[:160]}"

    return request


async def outbox_page(session: aiohttp.ClientSession, params: dict[str, str]) -> dict[str, Any]:
    async with session.get("/api/sms/outbox", params=params) as response:
        response.raise_for_status()
        page: dict[str, Any] = await response.json()
        return page


async def wait_dispatched(session: aiohttp.ClientSession) -> float:
    """Wait until nothing is `pending` or `sending`; returns the seconds waited."""
    started = time.perf_counter()
    while True:
        busy = False
        for status in ("pending", "sending"):
            page = await outbox_page(session, {"status": status, "limit": "1"})
            busy = busy or bool(page["items"])
        if not busy:
            return time.perf_counter() - started
        await asyncio.sleep(0.2)


async def all_entries(session: aiohttp.ClientSession) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = []
    params = {"limit": "200"}
    while True:
        page = await outbox_page(session, params)
        entries.extend(page["items"])
        if not page.get("nextCursor"):
            return entries
        params["cursor"] = page["nextCursor"]


def summarise(entries: list[dict[str, Any]], drain_seconds: float) -> Dispatch:
    def at(entry: dict[str, Any], name: str) -> datetime:
        return datetime.fromisoformat(entry["timestamps"][name])

    done = [e for e in entries if e["status"] in DONE]
    if not done:
        raise RuntimeError("no message reached the simulator")
    return Dispatch(
        done=len(done),
        failed=len(entries) - len(done),
        first_created=min(at(e, "createdAt") for e in entries),
        first_sent=min(at(e, "sentAt") for e in done),
        last_sent=max(at(e, "sentAt") for e in done),
        drain_seconds=drain_seconds,
    )


SEND_BODY = {"to": RECIPIENT, "message": "Your code is 482193", "tags": ["bench"]}


async def measure(url: str, api_key: str, log: Path, options: Options) -> None:
    connector = aiohttp.TCPConnector(limit=options.concurrency)
    async with aiohttp.ClientSession(
        url,
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=60),
        headers={"Authorization": f"Bearer {api_key}"},
    ) as session:
        await wait_healthy(session, log)
        n, c = options.requests, options.concurrency
        health = checked("GET", "/healthz", 200)
        await run_phase(session, min(n, 200), c, health)  # warm-up: connections, first requests
        baseline = await run_phase(session, n, c, health)
        sends = await run_phase(session, n, c, checked("POST", "/api/sms/send", 202, SEND_BODY))
        drain = await wait_dispatched(session)
        dispatch = summarise(await all_entries(session), drain)
    print_report(options, baseline, sends, dispatch)


def print_report(options: Options, baseline: Phase, sends: Phase, dispatch: Dispatch) -> None:
    command = shlex.join([sys.executable, *sys.argv])
    print(f"command: {command}")
    print(f"date:    {options.started_at.isoformat(timespec='seconds')}")
    print(
        f"host:    {platform.platform()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}, load average {os.getloadavg()[0]:.2f} at the end; "
        "SQLite, in-process dispatcher, embedded simulator "
        f"(step delay {options.step_delay} s), {options.concurrency} requests in flight, "
        f"API key limit {options.api_key_rate}/second"
    )
    print()
    rows = [
        ("GET /healthz (baseline)", baseline.rate, baseline),
        ("POST /api/sms/send → 202", sends.rate, sends),
        ("reaching simulator (first submit → last sent)", dispatch.end_to_end_rate, None),
        ("reaching simulator (first sent → last sent)", dispatch.sending_rate, None),
    ]
    print(f"{'measure':48} {'count':>6} {'errors':>6} {'per s':>9} {'p50 ms':>8} {'p99 ms':>8}")
    for label, rate, phase in rows:
        if phase is None:
            count, errors, p50, p99 = str(dispatch.done), str(dispatch.failed), "", ""
        else:
            count, errors = str(phase.ok), str(phase.errors)
            p50, p99 = f"{phase.percentile(50) * 1e3:.1f}", f"{phase.percentile(99) * 1e3:.1f}"
        print(f"{label:48} {count:>6} {errors:>6} {rate:9,.0f} {p50:>8} {p99:>8}")
    print()
    for phase_name, phase in (("healthz", baseline), ("send", sends)):
        for failure, times in phase.failures.most_common(5):
            print(f"{phase_name} failure x{times}: {failure}")
    print(f"send / healthz ratio: {sends.rate / baseline.rate:.2f}")
    print(f"backlog drained {dispatch.drain_seconds:.1f} s after the last 202")


def main(argv: list[str] | None = None) -> None:
    options = parse_options(sys.argv[1:] if argv is None else argv)
    with tempfile.TemporaryDirectory(prefix="smsrelay-bench-") as tmp:
        workdir = Path(tmp)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = server_env(workdir, url, options)
        api_key = create_tenant(workdir, env)
        with running_server(workdir, port, env) as log:

            async def bounded() -> None:
                async with asyncio.timeout(options.timeout):
                    await measure(url, api_key, log, options)

            asyncio.run(bounded())


if __name__ == "__main__":
    main()
