"""Sender pacing under load: N worker processes on one sender at one rate, measured at both ends.

    .venv/bin/python bench/bench_pacing.py --rate 10 --seconds 60 --workers 2
    .venv/bin/python bench/bench_pacing.py --rate 100 --seconds 60 --workers 3 --redis
    .venv/bin/python bench/bench_pacing.py --rate 100 --database postgresql://postgres@127.0.0.1:5432/postgres

Fills the outbox with `rate × seconds` one-segment messages (all due at once) from the default
sender, paced at `--rate` segments per second through SMSRELAY_SENDER_THROUGHPUT, starts the
workers, and reads two logs: the workers' (SMSRELAY_PACING_TRACE: the moment each request's
headers were written, `pacing.sent`) and the simulator's own request log (when each request
arrived). Prints, per run and for each end (`worker`, `provider`): the measured throughput
(segments after the first / time from the first to the last send), its share of the limit
(`ratio`, target 0.98-1.02) and the most segments in any sliding 1-second window (must not
exceed the limit at the worker; at the provider only by what the requests' trip adds, `transit_ms`:
arrival minus write, per message); slots missed (from the workers' `pacing.slot_missed` lines:
each wastes one slot) and any message the simulator accepted twice.
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
from urllib.parse import parse_qs, urlsplit

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
        "SMSRELAY_PACING_TOLERANCE_SECONDS": str(args.tolerance),
        "SMSRELAY_LEASE_SECONDS": "30",
        "SMSRELAY_PACING_TRACE": "1",
    }
    if args.redis:
        env["SMSRELAY_REDIS_URL"] = REDIS_URL
        client = redis.Redis.from_url(REDIS_URL)
        await client.delete(REDIS_PREFIX + f"twilio|{SENDER}")
        await client.aclose()
    count = args.rate * args.seconds
    stalls: list[tuple[float, float]] = []
    watch = asyncio.ensure_future(_watch_loop(stalls))
    with tempfile.TemporaryFile() as worker_log:
        fleet = LoggedFleet(env, port, worker_log)
        try:
            events = await _drive(fleet, simulator, db, count, args)
        finally:
            watch.cancel()
            fleet.stop()
            await simulator.stop()
            await db.dispose()
        worker_log.seek(0)
        lines = worker_log.read().decode(errors="replace")
        if args.dump:
            Path(args.dump).with_suffix(".workers.log").write_text(lines)
        misses = _misses(lines)
        written = _written(lines)
    figures = _figures(simulator, written, args, count)
    return figures | {"simulator_loop_stall_ms": _stalls(stalls)} | events | misses


async def _watch_loop(stalls: list[tuple[float, float]]) -> None:
    """How late the simulator's event loop (this process) wakes from 5 ms sleeps: a request
    that reaches it during such a stall is stamped when the stall ends."""
    while True:
        before = time.time()
        await asyncio.sleep(0.005)
        stalls.append((time.time(), time.time() - before - 0.005))


def _stalls(stalls: list[tuple[float, float]]) -> dict[str, object]:
    """The simulator's own stalls: the longest, and how many passed 50 ms."""
    lags = sorted(lag for _, lag in stalls)
    if not lags:
        return {}
    return {"max": round(lags[-1] * 1000, 1), "over_50ms": sum(lag > 0.05 for lag in lags)}


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


def _figures(
    simulator: SimulatorServer, written: dict[str, float], args: argparse.Namespace, count: int
) -> dict[str, object]:
    arrived = {_outbox_id(r.params): r.received_at.timestamp() for r in simulator.state.requests}
    if args.dump:  # one line per message: when its request was written, when it arrived
        pairs = sorted((written.get(key, 0.0), at) for key, at in arrived.items())
        Path(args.dump).write_text("".join(f"{w:.6f} {a:.6f}\n" for w, a in pairs))
    transit = sorted(arrived[key] - at for key, at in written.items() if key in arrived)
    return {
        "backend": "redis" if args.redis else args.database.split(":")[0],
        "workers": args.workers,
        "limit": args.rate,
        "segments": len(simulator.state.requests),
        "accepted": len(simulator.state.accepted),
        "expected": count,
        "worker": _end(sorted(written.values()), args.rate),
        "provider": _end(
            sorted(r.received_at.timestamp() for r in simulator.state.requests), args.rate
        ),
        "transit_ms": _spread(transit),
        "provider_busiest_window": _busiest(arrived, written),
        "accepted_twice": sum(n - 1 for n in _accepted_bodies(simulator).values() if n > 1),
    }


def _end(moments: list[float], rate: int) -> dict[str, object]:
    """Throughput, share of the limit and busiest 1 s window of one-segment sends at `moments`."""
    if len(moments) < 2:
        return {"sends": len(moments)}
    span = moments[-1] - moments[0]
    measured = (len(moments) - 1) / span if span > 0 else 0.0
    return {
        "sends": len(moments),
        "seconds": round(span, 2),
        "measured_per_second": round(measured, 3),
        "ratio": round(measured / rate, 4),
        "max_in_any_1s_window": max_in_window([(at, 1) for at in moments]),
    }


def _busiest(arrived: dict[str, float], written: dict[str, float]) -> dict[str, object]:
    """The provider's busiest 1 s window: how far apart its requests had left the workers,
    and how long the longest of them was on its way (what bunched them)."""
    order = sorted(arrived, key=arrived.__getitem__)
    best, first, left = 0, 0, 0
    for right, key in enumerate(order):
        while arrived[order[left]] <= arrived[key] - 1 + 1e-9:
            left += 1
        if right - left + 1 > best:
            best, first = right - left + 1, left
    inside = [key for key in order[first : first + best] if key in written]
    if not inside:
        return {"requests": best}
    left_at = [written[key] for key in inside]
    trips = [arrived[key] - at for key, at in written.items() if key in arrived]
    spread = max(trips) - min(trips)
    return {
        "requests": best,
        "left_within_s": round(max(left_at) - min(left_at), 3),
        "max_transit_ms": round(max(arrived[k] - written[k] for k in inside) * 1000, 1),
        # Requests that arrive within 1 s left within 1 s + (longest - shortest trip): the most
        # the workers' exact 1 s bound allows the provider to see, given the trips measured.
        "bound_from_transit": max_in_window([(at, 1) for at in written.values()], 1 + spread),
    }


def _spread(delays: list[float]) -> dict[str, object]:
    if not delays:
        return {}
    at = [delays[min(len(delays) - 1, int(q * len(delays)))] * 1000 for q in (0, 0.5, 0.99)]
    return {
        "min": round(at[0], 1),
        "p50": round(at[1], 1),
        "p99": round(at[2], 1),
        "max": round(delays[-1] * 1000, 1),
    }


def _outbox_id(params: dict[str, str]) -> str:
    """The message a request carries, from its status callback URL's `outboxId`."""
    query = parse_qs(urlsplit(params.get("StatusCallback", "")).query)
    return query.get("outboxId", [""])[0]


def _written(log: str) -> dict[str, float]:
    """When each message's request was written, from the workers' `pacing.sent` lines."""
    return {outbox_id: float(at) for outbox_id, at in _SENT.findall(log)}


_SENT = re.compile(r'"outbox_id": "([^"]+)", "slot": [\d.e+-]+, "written": ([\d.e+-]+)')


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
    parser.add_argument("--guard", type=float, default=0.0, help="SMSRELAY_PACING_GUARD_SECONDS")
    parser.add_argument(
        "--tolerance", type=float, default=0.2, help="SMSRELAY_PACING_TOLERANCE_SECONDS"
    )
    parser.add_argument(
        "--status-delay",
        type=float,
        default=0.05,
        help="seconds between the simulator's status callbacks (longer than the run: none)",
    )
    parser.add_argument(
        "--dump",
        help="write each message's write and arrival times here (and the workers' logs beside)",
    )
    parser.add_argument("--redis", action="store_true", help="share the pacing state in Redis")
    parser.add_argument(
        "--database", default="sqlite", help="sqlite, or a PostgreSQL server URL (a db is made)"
    )
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(main(_arguments()))
