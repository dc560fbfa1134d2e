"""Delivery under faults and crashes: many messages, injected provider faults, killed workers.

Used by tests/e2e/test_chaos.py (short form) and bench/bench_chaos.py (long form). It runs
the simulator in this process, `smsrelay serve --no-dispatcher` for the webhooks and several
`smsrelay worker` processes, writes the messages straight into the outbox, SIGKILLs and
restarts workers while they send, and then checks, from the simulator's own log and the
outbox: nothing lost, nothing accepted twice, no status ever observed moving backwards.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, insert, select

from smsrelay.domain.status import Status
from smsrelay.providers.simulator.config import SimulatorConfig
from smsrelay.providers.simulator.faults import Faults
from smsrelay.providers.simulator.server import SimulatorServer
from smsrelay.services.submit import NewMessage, Principal, SubmitPolicy, build_row
from smsrelay.services.tenants import create_tenant
from smsrelay.store.database import Database
from smsrelay.store.tables import message_events, messages

SMSRELAY = str(Path(sys.executable).with_name("smsrelay"))
# Rank of each status along the path; the dispatcher's retry (sending → pending) is the one
# backwards move it may make, so pending and sending share a rank for this check.
RANK = {
    "pending": 0,
    "sending": 0,
    "sent": 1,
    "delivered": 2,
    "undelivered": 2,
    "failed": 2,
    "expired": 2,
    "suppressed": 2,
    "canceled": 2,
}
FINAL = {"delivered", "undelivered", "failed", "expired"}


@dataclass
class ChaosConfig:
    messages: int = 2000
    workers: int = 3
    kills: int = 3
    kill_every_seconds: float = 3.0
    error_5xx_after_accept_rate: float = 0.05
    error_5xx_rate: float = 0.01
    rate_429: float = 0.02
    timeout_rate: float = 0.01
    callback_duplicate_rate: float = 0.1
    callback_reorder_rate: float = 0.1
    deadline_seconds: float = 240.0
    worker_concurrency: int = 16
    seed: int = 7


@dataclass
class ChaosResult:
    messages: int
    final_by_status: dict[str, int]
    lost: int
    accepted_twice: int
    regressions: int
    kills: int
    faults: dict[str, int]
    callbacks_duplicated: int
    wall_seconds: float
    notes: list[str] = field(default_factory=list)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def process_env(
    database_url: str, simulator: SimulatorServer, public_url: str, concurrency: int
) -> dict[str, str]:
    assert simulator.base_url is not None
    return {
        **os.environ,
        "SMSRELAY_DATABASE_URL": database_url,
        "SMSRELAY_PUBLIC_URL": public_url,
        "SMSRELAY_PROVIDER": "twilio",
        "TWILIO_API_BASE_URL": simulator.base_url,
        "TWILIO_ACCOUNT_SID": simulator.account_sid,
        "TWILIO_AUTH_TOKEN": simulator.auth_token,
        "TWILIO_FROM_PHONE_NUMBER": "+15005550006",
        "SMSRELAY_DISPATCH_CONCURRENCY": str(concurrency),
        "SMSRELAY_DISPATCH_BATCH_SIZE": "20",
        "SMSRELAY_DISPATCH_POLL_SECONDS": "0.05",
        "SMSRELAY_PROVIDER_TIMEOUT_SECONDS": "1.5",
        "SMSRELAY_LEASE_SECONDS": "4",
        "SMSRELAY_RECONCILE_AFTER_SECONDS": "1",
        "SMSRELAY_STATUS_CHECK_AFTER_SECONDS": "3",
        "SMSRELAY_MAX_ATTEMPTS": "8",
        # The proofs submit as fast as the API accepts, well over the default 100/s per key;
        # the per-key limit has tests of its own (test_rate_limits.py).
        "SMSRELAY_API_KEY_RATE_LIMIT": "100000/second",
    }


class Fleet:
    """The API process and the worker processes, started, killed and stopped."""

    def __init__(self, env: dict[str, str], port: int) -> None:
        self.env = env
        self.port = port
        self.api: subprocess.Popen[bytes] | None = None
        self.workers: list[subprocess.Popen[bytes]] = []
        self.killed = 0

    def start_api(self, *, dispatch: bool = False) -> None:
        flags = [] if dispatch else ["--no-dispatcher"]
        self.api = subprocess.Popen(
            [SMSRELAY, "serve", *flags, "--port", str(self.port)],
            env=self.env,
            stderr=subprocess.DEVNULL,
        )

    def start_worker(self) -> None:
        self.workers.append(
            subprocess.Popen([SMSRELAY, "worker"], env=self.env, stderr=subprocess.DEVNULL)
        )

    def kill_one(self, rng: random.Random) -> None:
        alive = [w for w in self.workers if w.poll() is None]
        if alive:
            victim = rng.choice(alive)
            victim.send_signal(signal.SIGKILL)
            victim.wait()
            self.killed += 1

    def stop(self) -> None:
        everyone = [p for p in [self.api, *self.workers] if p is not None]
        for process in everyone:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in everyone:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


async def wait_healthy(url: str, within: float = 30.0) -> None:
    async with httpx.AsyncClient() as client, asyncio.timeout(within):
        while True:
            try:
                if (await client.get(f"{url}/healthz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)


async def fill_outbox(db: Database, count: int) -> tuple[str, list[str]]:
    """Write `count` pending messages, each with its own number and body."""
    tenant = await create_tenant(db, "chaos")
    principal = Principal(tenant.tenant_id, tenant.key_id)
    policy = SubmitPolicy(provider="twilio")
    from datetime import UTC, datetime

    now = datetime.now(UTC)
    rows = [
        build_row(
            policy,
            principal,
            NewMessage(to=f"+1415555{index % 10000:04d}", message=f"chaos message {index}"),
            now,
        )
        for index in range(count)
    ]
    for start in range(0, count, 500):
        async with db.transaction() as connection:
            await connection.execute(insert(messages), rows[start : start + 500])
    return tenant.tenant_id, [row["id"] for row in rows]


class RegressionWatch:
    """Polls every message's status and counts any move backwards along the path."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.last: dict[str, str] = {}
        self.regressions: list[tuple[str, str, str]] = []

    async def observe(self) -> Counter[str]:
        async with self.db.transaction() as connection:
            rows = (await connection.execute(select(messages.c.id, messages.c.status))).all()
        for message_id, status in rows:
            before = self.last.get(message_id)
            if before is not None and RANK[status] < RANK[before]:
                self.regressions.append((message_id, before, status))
            self.last[message_id] = status
        return Counter(status for _, status in rows)


async def run_chaos(
    database_url: str, config: ChaosConfig, *, progress: bool = False
) -> ChaosResult:
    rng = random.Random(config.seed)  # choosing victims, not security
    faults = Faults(
        error_5xx_rate=config.error_5xx_rate,
        error_5xx_after_accept_rate=config.error_5xx_after_accept_rate,
        rate_429=config.rate_429,
        timeout_rate=config.timeout_rate,
        timeout_seconds=4.0,
        callback_duplicate_rate=config.callback_duplicate_rate,
        callback_reorder_rate=config.callback_reorder_rate,
        latency=0.002,
        seed=config.seed,
    )
    simulator = SimulatorServer(SimulatorConfig(faults=faults, step_delay=0.02))
    await simulator.start()
    db = Database(database_url)
    await db.migrate()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    fleet = Fleet(process_env(database_url, simulator, url, config.worker_concurrency), port)
    started = time.monotonic()
    try:
        fleet.start_api()
        await wait_healthy(url)
        _, ids = await fill_outbox(db, config.messages)
        for _ in range(config.workers):
            fleet.start_worker()
        watch = RegressionWatch(db)
        await _drive(fleet, watch, config, rng, progress)
        wall = time.monotonic() - started
        await asyncio.sleep(1.0)  # late duplicates and callbacks, if any, land now
        counts = await watch.observe()
        return _result(config, simulator, watch, counts, fleet.killed, wall, len(ids))
    finally:
        fleet.stop()
        await simulator.stop()
        await db.dispose()


async def _drive(
    fleet: Fleet, watch: RegressionWatch, config: ChaosConfig, rng: random.Random, progress: bool
) -> None:
    deadline = time.monotonic() + config.deadline_seconds
    next_kill = time.monotonic() + config.kill_every_seconds
    poll = max(0.5, config.messages / 50_000)  # reading every status costs more as it grows
    next_report = 0.0
    while time.monotonic() < deadline:
        counts = await watch.observe()
        final = sum(counts[s] for s in FINAL)
        if progress and time.monotonic() >= next_report:
            print(f"  {dict(counts)} killed={fleet.killed}", file=sys.stderr, flush=True)
            next_report = time.monotonic() + 10
        if final == config.messages and fleet.killed >= config.kills:
            return
        if fleet.killed < config.kills and time.monotonic() >= next_kill:
            fleet.kill_one(rng)
            fleet.start_worker()
            next_kill = time.monotonic() + config.kill_every_seconds
        await asyncio.sleep(poll)


def _result(
    config: ChaosConfig,
    simulator: SimulatorServer,
    watch: RegressionWatch,
    counts: Counter[str],
    kills: int,
    wall: float,
    total: int,
) -> ChaosResult:
    bodies = Counter(message.body for message in simulator.state.accepted)
    requests = simulator.state.requests
    fault_counts = Counter(_fault_kind(r) for r in requests)
    tokens = Counter(c.idempotency_token for c in simulator.state.callbacks)
    return ChaosResult(
        messages=total,
        final_by_status=dict(counts),
        lost=total - sum(counts[s] for s in FINAL),
        accepted_twice=sum(1 for n in bodies.values() if n > 1),
        regressions=len(watch.regressions),
        kills=kills,
        faults={k: v for k, v in fault_counts.items() if k != "ok"},
        callbacks_duplicated=sum(1 for n in tokens.values() if n > 1),
        wall_seconds=round(wall, 1),
    )


def _fault_kind(request: Any) -> str:
    status = request.http_status
    if status == 429:
        return "429"
    if status >= 500:
        return "5xx-after-accept" if request.sid else "5xx-before-accept"
    return "timeout" if request.held else "ok"


async def count_events(db: Database, kind: str) -> int:
    async with db.transaction() as connection:
        total = await connection.scalar(
            select(func.count()).select_from(message_events).where(message_events.c.kind == kind)
        )
    return int(total or 0)


__all__ = ["ChaosConfig", "ChaosResult", "Status", "count_events", "run_chaos"]
