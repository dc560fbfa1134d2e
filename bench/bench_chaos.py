"""Long form of the delivery proof: 100,000 messages under provider faults and worker kills.

    .venv/bin/python bench/bench_chaos.py --messages 100000 \\
        --database postgresql://postgres@127.0.0.1:5432/postgres

Creates (and drops) its own database on the PostgreSQL server named, or uses a temporary SQLite
file with `--database sqlite`. Prints the figures: messages, injected faults of each kind,
kills, lost, accepted twice, status regressions and wall time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import sys
import tempfile
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.chaos_harness import ChaosConfig, run_chaos


async def _admin(server_url: str, statement: str) -> None:
    url = make_url(server_url).set(drivername="postgresql", database="postgres")
    connection = await asyncpg.connect(url.render_as_string(hide_password=False))
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


async def main(args: argparse.Namespace) -> None:
    config = ChaosConfig(
        messages=args.messages,
        workers=args.workers,
        kills=args.kills,
        kill_every_seconds=args.kill_every,
        deadline_seconds=args.deadline,
        worker_concurrency=args.concurrency,
    )
    started = datetime.now(UTC)
    if args.database == "sqlite":
        with tempfile.TemporaryDirectory() as folder:
            result = await run_chaos(f"sqlite:///{folder}/chaos.db", config, progress=True)
    else:
        name = f"smsrelay_chaos_{secrets.token_hex(3)}"
        await _admin(args.database, f'CREATE DATABASE "{name}"')
        try:
            url = make_url(args.database).set(database=name)
            result = await run_chaos(
                url.render_as_string(hide_password=False), config, progress=True
            )
        finally:
            await _admin(args.database, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    print(
        json.dumps(
            {
                "started": started.isoformat(timespec="seconds"),
                "database": args.database.split("://")[0],
                **asdict(config),
                **asdict(result),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--database", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--kill-every", type=float, default=30.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--deadline", type=float, default=4 * 3600.0)
    asyncio.run(main(parser.parse_args()))
