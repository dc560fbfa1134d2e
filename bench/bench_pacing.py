"""Sender pacing under load: N worker processes on one sender at one rate, measured at the provider.

    .venv/bin/python bench/bench_pacing.py --rate 10 --seconds 60 --workers 2
    .venv/bin/python bench/bench_pacing.py --rate 100 --seconds 60 --workers 3 --redis
    .venv/bin/python bench/bench_pacing.py --rate 100 --database postgresql://postgres@127.0.0.1:5432/postgres

Fills the outbox with `rate × seconds` one-segment messages (all due at once) from the default
sender, paced at `--rate` segments per second through SMSRELAY_SENDER_THROUGHPUT, starts the
workers, and reads the simulator's own request log. Prints, per run: the measured throughput
(segments after the first / time from the first to the last request), its ratio to the limit
(target 0.98-1.02; the default 0.01 s guard costs 1 %), the most segments in any sliding
1-second window (must not exceed the limit), slots missed (from the workers' `pacing.slot_missed`
log lines: each wastes one slot) and any message the simulator accepted twice.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import secrets
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import IO

import asyncpg
import redis.asyncio as redis
from sqlalchemy import select
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from smsrelay.dispatch.buckets import REDIS_PREFIX
from smsrelay.providers.simulator.config import SimulatorConfig
from smsrelay.providers.simulator.server import SimulatorServer
from smsrelay.store.database import Database
from smsrelay.store.tables import message_events
from tests.chaos_harness import SMSRELAY, Fleet, fill_outbox, free_port, process_env, wait_healthy
from tests.windows import max_in_window

SENDER = "+15005550006"
REDIS_URL = "redis://127.0.0.1:6379/15"


class LoggedFleet(Fleet):
    """The harness's fleet, with the workers' JSON log lines kept in one file."""

    def __init__(self, env: dict[str, str], port: int, log: IO[bytes]) -> None:
        super().__init__(env, port)
        self.log = log

    def start_worker(self) -> None:
        self.workers.append(subprocess.Popen([SMSRELAY, "worker"], env=self.env, stderr=self.log))


async def run(database_url: str, args: argparse.Namespace) -> dict[str, object]:
    simulator = SimulatorServer(SimulatorConfig(step_delay=args.status_delay))
    await simulator.start()
    db = Database(database_url)
    await db.migrate()
    port = free_port()
    env = process_env(database_url, simulator, f"http://127.0.0.1:{port}", args.concurrency)
    env |= {
        "SMSRELAY_SENDER_THROUGHPUT": f"{SENDER}={args.rate}",
        "SMSRELAY_PACING_GUARD_SECONDS": str(args.guard),
        "SMSRELAY_LEASE_SECONDS": "30",
    }
    if args.redis:
        env["SMSRELAY_REDIS_URL"] = REDIS_URL
        client = redis.Redis.from_url(REDIS_URL)
        await client.delete(REDIS_PREFIX + f"twilio|{SENDER}")
        await client.aclose()
    count = args.rate * args.seconds
    with tempfile.TemporaryFile() as worker_log:
        fleet = LoggedFleet(env, port, worker_log)
        try:
            events = await _drive(fleet, simulator, db, count, args)
        finally:
            fleet.stop()
            await simulator.stop()
            await db.dispose()
        worker_log.seek(0)
        lines = worker_log.read().decode(errors="replace")
        if args.dump:
            Path(args.dump).with_suffix(".workers.log").write_text(lines)
        misses = _misses(lines)
    return _figures(simulator, args, count) | events | misses


async def _drive(
    fleet: LoggedFleet,
    simulator: SimulatorServer,
    db: Database,
    count: int,
    args: argparse.Namespace,
) -> dict[str, object]:
    """Start the fleet on a backlog of `count` messages; wait until all are accepted."""
    fleet.start_api()
    await wait_healthy(f"http://127.0.0.1:{fleet.port}")
    await fill_outbox(db, count)
    started = time.monotonic()
    for _ in range(args.workers):
        fleet.start_worker()
    while len(simulator.state.accepted) < count:
        if time.monotonic() - started > args.seconds * 3 + 60:
            break
        await asyncio.sleep(0.5)
    return await _event_counts(db)


def _figures(simulator: SimulatorServer, args: argparse.Namespace, count: int) -> dict[str, object]:
    starts = sorted((r.received_at.timestamp(), 1) for r in simulator.state.requests)
    if args.dump:
        Path(args.dump).write_text("".join(f"{at:.6f}\n" for at, _ in starts))
    span = starts[-1][0] - starts[0][0]
    measured = (len(starts) - 1) / span if span > 0 else 0.0
    return {
        "backend": "redis" if args.redis else args.database.split(":")[0],
        "workers": args.workers,
        "limit": args.rate,
        "segments": len(starts),
        "accepted": len(simulator.state.accepted),
        "expected": count,
        "seconds": round(span, 2),
        "measured_per_second": round(measured, 3),
        "ratio": round(measured / args.rate, 4),
        "max_in_any_1s_window": max_in_window(starts),
        "accepted_twice": sum(n - 1 for n in _accepted_bodies(simulator).values() if n > 1),
    }


def _accepted_bodies(simulator: SimulatorServer) -> Counter[str]:
    """Each message of the backlog has its own body: one seen twice was sent twice."""
    return Counter(r.params.get("Body", "") for r in simulator.state.requests if r.accepted)


def _misses(log: str) -> dict[str, object]:
    """Slots missed (the send started more than half the guard late), from the workers' logs
    (two processes append to one file: their lines may run together, so no line is parsed)."""
    late = sorted(int(ms) for ms in _MISSED.findall(log))
    return {
        "slots_missed": len(late),
        "missed_late_ms_median": late[len(late) // 2] if late else None,
        "missed_late_ms_max": late[-1] if late else None,
    }


_MISSED = re.compile(r'"late_ms": (\d+)[^{}]*"event": "pacing\.slot_missed"')


async def _event_counts(db: Database) -> dict[str, object]:
    """Deferrals (put back until their turn) and sends released after missing their slot (no
    new slot within the horizon), for the record."""
    async with db.reading() as connection:
        rows = (
            await connection.execute(select(message_events.c.kind, message_events.c.data))
        ).all()
    kinds = Counter(
        kind if kind != "claim_released" else f"released: {data.get('reason')}"
        for kind, data in rows
    )
    return {
        "deferred": kinds["pacing_deferred"],
        "released_after_miss": kinds["released: missed its pacing slot"],
    }


async def _admin(server_url: str, statement: str) -> None:
    url = make_url(server_url).set(drivername="postgresql", database="postgres")
    connection = await asyncpg.connect(url.render_as_string(hide_password=False))
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


async def main(args: argparse.Namespace) -> None:
    if args.database == "sqlite":
        with tempfile.TemporaryDirectory() as folder:
            figures = await run(f"sqlite:///{folder}/pacing.db", args)
    else:
        name = f"smsrelay_pacing_{secrets.token_hex(3)}"
        await _admin(args.database, f'CREATE DATABASE "{name}"')
        try:
            url = make_url(args.database).set(database=name)
            figures = await run(url.render_as_string(hide_password=False), args)
        finally:
            await _admin(args.database, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    print(json.dumps(figures))


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=10, help="segments per second (the limit)")
    parser.add_argument("--seconds", type=int, default=60, help="how long the backlog lasts")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=16, help="sends in flight per worker")
    parser.add_argument("--guard", type=float, default=0.01, help="SMSRELAY_PACING_GUARD_SECONDS")
    parser.add_argument(
        "--status-delay",
        type=float,
        default=0.05,
        help="seconds between the simulator's status callbacks (longer than the run: none)",
    )
    parser.add_argument(
        "--dump",
        help="write the simulator's arrival times here, one a line (and the workers' logs beside)",
    )
    parser.add_argument("--redis", action="store_true", help="share the pacing state in Redis")
    parser.add_argument(
        "--database", default="sqlite", help="sqlite, or a PostgreSQL server URL (a db is made)"
    )
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(main(_arguments()))
