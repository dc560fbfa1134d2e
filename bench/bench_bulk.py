"""Measure a 100,000-recipient `POST /api/sms/bulk`: seconds to the durable 202 and peak memory,
against a raw `executemany` of the same rows in the same run (printed as a ratio).

Target (issue 7 item 6b): at most 1.5 s to the 202 on SQLite, and at least 0.6 of raw, where
ratio = raw seconds / bulk seconds and "raw" is a bare DB-API `executemany` (one transaction, no
validation) of the 100,000 outbox rows the bulk becomes, into a freshly migrated database of the
same kind. The 202 is durable: the bulk and its recipients are committed before it is sent.
On SQLite the summary also gives `ratio_compact_raw_over_bulk`: against a raw `executemany` of
the compact rows the 202 itself stores (one `bulk_recipients` row a recipient), for whoever
reads "the same rows" that way; that baseline validates nothing and writes 5 columns.

Wall seconds are what the target is about; CPU seconds are printed beside them because the
machine may be shared (the load average at the end is printed too). Each phase runs in a child
process of its own, so its peak memory (the RSS high-water mark less
the RSS before the phase) is its own. The bulk phase drives the real app in process (httpx ASGI
transport, an Idempotency-Key, no network); `--expand` also times the expander writing every
outbox row afterwards. Run from the repository root:

    .venv/bin/python bench/bench_bulk.py [--recipients 100000] [--repeat 3] [--expand]
        [--database-url postgresql://postgres@127.0.0.1:5432/postgres]

The last line printed is one JSON object (for harnesses); the lines before it are for people.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
TARGET_SECONDS = 1.5
TARGET_RATIO = 0.6
MESSAGE = "Our spring sale starts today: 20% off everything. Reply STOP to opt out."


def numbers(count: int) -> list[str]:
    """`count` distinct US numbers that pass the same checks a bulk applies."""
    from smsrelay.domain.phone_batch import fast_accept

    found: list[str] = []
    candidate = 2_012_000_000
    while len(found) < count:
        candidate += 1
        text = f"+1{candidate}"
        if fast_accept(text) is not None:
            found.append(text)
    return found


def rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --- child phases --------------------------------------------------------------------------


async def bulk_phase(database_url: str, count: int, expand: bool) -> dict[str, Any]:
    import httpx

    from smsrelay.api.app import create_app
    from smsrelay.bootstrap import bootstrap
    from smsrelay.config import load_settings
    from smsrelay.services.tenants import create_tenant

    settings = load_settings(database_url=database_url, api_key_rate_limit="1000000/second")
    container = bootstrap(settings)
    await container.start(migrate=True, dispatch=False)
    tenant = await create_tenant(container.db, "bench")
    body = json.dumps({"recipients": numbers(count), "message": MESSAGE}).encode()
    headers = {
        "Authorization": f"Bearer {tenant.api_key}",
        "Content-Type": "application/json",
        "Idempotency-Key": f"bench-{time.time_ns()}",
    }
    transport = httpx.ASGITransport(app=create_app(container, manage=False))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://bench", timeout=120
    ) as client:
        await client.get("/healthz")
        before = rss_mb()
        cpu, started = time.process_time(), time.perf_counter()
        response = await client.post("/api/sms/bulk", content=body, headers=headers)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        peak = peak_mb() - before
    assert response.status_code == 202, response.text[:500]
    answer = response.json()
    result = {"seconds": seconds, "cpu": cpu, "peak_mb": peak, "accepted": answer["acceptedCount"]}
    if expand:
        result["expand_seconds"] = await _expand(container)
    await container.stop()
    return result


async def _expand(container: Any) -> float:
    expander = container.bulk_expander
    started = time.perf_counter()
    while await expander.run_once():
        pass
    return time.perf_counter() - started


def outbox_rows(count: int) -> list[tuple[Any, ...]]:
    """The rows the bulk becomes, as `messages` tuples (every column a bulk row sets)."""
    from smsrelay.domain.ids import new_id

    now = datetime.now(UTC).replace(tzinfo=None)
    return [
        (
            new_id("sms"),
            "ten_bench",
            phone,
            MESSAGE,
            "twilio",
            "transactional",
            "GSM-7",
            1,
            "0.0079",
            "0.0079",
            "USD",
            "pending",
            now,
            now,
            now,
            "[]",
            "{}",
            0,
            0,
            0,
            0,
            "blk_bench",
        )
        for phone in numbers(count)
    ]


COLUMNS = (
    "id, tenant_id, recipient, body, provider, category, encoding, segments, cost_per_unit, "
    "total_cost, currency, status, created_at, updated_at, next_attempt_at, tags, custom_data, "
    "attempt_count, retry_count, needs_reconcile, resend_count, bulk_id"
)


async def raw_phase(database_url: str, count: int) -> dict[str, Any]:
    from smsrelay.store.database import Database, sqlite_path

    db = Database(database_url)
    await db.migrate()
    await db.dispose()
    rows = outbox_rows(count)
    before = rss_mb()
    path = sqlite_path(database_url)
    cpu = time.process_time()
    if path is not None:
        seconds = _raw_sqlite(path, rows)
    else:
        seconds = await _raw_postgres(database_url, rows)
    result = {"seconds": seconds, "cpu": time.process_time() - cpu, "peak_mb": peak_mb() - before}
    if path is not None:
        result["compact_seconds"] = _raw_sqlite_compact(path, [r[2] for r in rows])
    return result


def _raw_sqlite_compact(path: Path, phones: list[str]) -> float:
    """The other reading of "the same rows": what the 202 itself stores, one row a recipient."""
    import sqlite3

    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute(
        "INSERT INTO bulks (id, tenant_id, status, message, variables, category, tags, "
        "custom_data, smart_encoding, accepted_count, rejected_count, duplicate_count, "
        "expanded_count, created_at, updated_at) VALUES ('blk_raw', 'ten_bench', 'accepting', "
        "'m', '{}', 'transactional', '[]', '{}', 0, 0, 0, 0, 0, 0, 0)"
    )
    rows = [("blk_raw", seq, phone, "US", None) for seq, phone in enumerate(phones)]
    started = time.perf_counter()
    connection.execute("BEGIN IMMEDIATE")
    connection.executemany("INSERT INTO bulk_recipients VALUES (?, ?, ?, ?, ?)", rows)
    connection.execute("COMMIT")
    seconds = time.perf_counter() - started
    connection.close()
    return seconds


def _raw_sqlite(path: Path, rows: list[tuple[Any, ...]]) -> float:
    import sqlite3

    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    connection.execute("INSERT INTO tenants (id, name, created_at) VALUES ('ten_bench', 'b', 0)")
    marks = ", ".join("?" * len(rows[0]))
    started = time.perf_counter()
    connection.execute("BEGIN IMMEDIATE")
    statement = f"INSERT INTO messages ({COLUMNS}) VALUES ({marks})"  # noqa: S608 - constants
    connection.executemany(statement, rows)
    connection.execute("COMMIT")
    seconds = time.perf_counter() - started
    connection.close()
    return seconds


async def _raw_postgres(url: str, rows: list[tuple[Any, ...]]) -> float:
    import asyncpg

    connection = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
    stamp = datetime.now(UTC)
    await connection.execute(
        "INSERT INTO tenants (id, name, created_at) VALUES ('ten_bench', 'b', $1)", stamp
    )
    rows = [(*r[:12], stamp, stamp, stamp, *r[15:]) for r in rows]
    marks = ", ".join(f"${i + 1}" for i in range(len(rows[0])))
    started = time.perf_counter()
    async with connection.transaction():
        statement = f"INSERT INTO messages ({COLUMNS}) VALUES ({marks})"  # noqa: S608 - constants
        await connection.executemany(statement, rows)
    seconds = time.perf_counter() - started
    await connection.close()
    return seconds


# --- parent --------------------------------------------------------------------------------


def run_child(phase: str, database_url: str, args: argparse.Namespace) -> dict[str, Any]:
    command = [sys.executable, __file__, "--phase", phase, "--database-url", database_url]
    command += ["--recipients", str(args.recipients)] + (["--expand"] if args.expand else [])
    env = {**os.environ, "SMSRELAY_LOG_LEVEL": "WARNING"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=REPO, check=False)
    if done.returncode != 0:
        sys.exit(f"{phase} phase failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def fresh_database(args: argparse.Namespace, workdir: Path, name: str) -> tuple[str, Any]:
    """A database URL for one phase (SQLite file, or a PostgreSQL database of its own)."""
    if not args.database_url:
        return f"sqlite:///{workdir / name}.db", None
    sys.path.insert(0, str(REPO))
    os.environ["SMSRELAY_TEST_DATABASE_URL"] = args.database_url  # the server to create it on
    from tests.conftest import throwaway_postgres

    context = throwaway_postgres(f"bench_{name}")
    return context.__enter__(), context


def measure(args: argparse.Namespace) -> dict[str, Any]:
    bulks, raws = [], []
    with tempfile.TemporaryDirectory(prefix="smsrelay-bench-bulk-") as workdir:
        for round_ in range(args.repeat):
            for phase, into in (("bulk", bulks), ("raw", raws)):
                url, context = fresh_database(args, Path(workdir), f"{phase}{round_}")
                try:
                    into.append(run_child(phase, url, args))
                finally:
                    if context is not None:
                        context.__exit__(None, None, None)
                print(f"round {round_ + 1} {phase}: {into[-1]}", file=sys.stderr)
    bulk = min(bulks, key=lambda r: r["seconds"])
    raw = min(raws, key=lambda r: r["seconds"])
    ratio = raw["seconds"] / bulk["seconds"]
    summary = {
        "benchmark": "bulk_202",
        "database": "postgresql" if args.database_url else "sqlite",
        "recipients": args.recipients,
        "accepted": bulk["accepted"],
        "seconds_to_202": round(bulk["seconds"], 3),
        "cpu_seconds_to_202": round(bulk["cpu"], 3),
        "peak_mb": round(bulk["peak_mb"], 1),
        "raw_executemany_seconds": round(raw["seconds"], 3),
        "raw_cpu_seconds": round(raw["cpu"], 3),
        "load_average": round(os.getloadavg()[0], 2),
        "raw_peak_mb": round(raw["peak_mb"], 1),
        "ratio_raw_over_bulk": round(ratio, 3),
        "target_seconds": TARGET_SECONDS,
        "target_ratio": TARGET_RATIO,
        "meets_target": bulk["seconds"] <= TARGET_SECONDS and ratio >= TARGET_RATIO,
        "repeat": args.repeat,
        "cpus": os.cpu_count(),
    }
    if "compact_seconds" in raw:
        compact = min(r["compact_seconds"] for r in raws)
        summary["raw_compact_executemany_seconds"] = round(compact, 3)
        summary["ratio_compact_raw_over_bulk"] = round(compact / bulk["seconds"], 3)
    if "expand_seconds" in bulk:
        summary["expand_seconds"] = round(bulk["expand_seconds"], 3)
    return summary


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipients", "-n", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3, help="rounds; the best of each is kept")
    parser.add_argument("--expand", action="store_true", help="also time the expander")
    parser.add_argument("--database-url", default="", help="PostgreSQL server (default SQLite)")
    parser.add_argument("--phase", choices=("bulk", "raw"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.phase == "bulk":
        print(json.dumps(asyncio.run(bulk_phase(args.database_url, args.recipients, args.expand))))
        return
    if args.phase == "raw":
        print(json.dumps(asyncio.run(raw_phase(args.database_url, args.recipients))))
        return
    summary = measure(args)
    print(
        f"{summary['recipients']} recipients on {summary['database']}: 202 in "
        f"{summary['seconds_to_202']} s (peak +{summary['peak_mb']} MB); raw executemany "
        f"{summary['raw_executemany_seconds']} s; ratio {summary['ratio_raw_over_bulk']} "
        f"(targets ≤ {TARGET_SECONDS} s, ≥ {TARGET_RATIO})",
        file=sys.stderr,
    )
    print(json.dumps(summary))


if __name__ == "__main__":
    main(sys.argv[1:])
