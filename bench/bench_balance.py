"""Measure what metering adds to a submit: unmetered, metered, and metered with the hard stop.

Submits `--messages` messages per mode through `submit_message` (the path every API send takes),
`--concurrency` at a time, on a fresh SQLite file (or `--database-url`, e.g. an empty
PostgreSQL database), and prints the median submits per second over interleaved rounds. Run from the
repository root:

    .venv/bin/python bench/bench_balance.py [--messages 2000] [--concurrency 8] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from smsrelay.services import balances
from smsrelay.services.alerts import AlertNetwork, AlertSettingsInput, save_alert_settings
from smsrelay.services.submit import NewMessage, Principal, SubmitPolicy, submit_message
from smsrelay.services.tenants import create_tenant
from smsrelay.store.database import Database

MODES = ("unmetered", "metered", "hard stop")


async def _tenant(db: Database, mode: str) -> Principal:
    tenant = await create_tenant(db, mode)
    now = datetime.now(UTC)
    if mode != "unmetered":
        await balances.credit(db, tenant.tenant_id, "1000000", now)
    if mode == "hard stop":
        given = AlertSettingsInput(hard_stop=True, low_balance_threshold="1")
        await save_alert_settings(
            db,
            tenant.tenant_id,
            given,
            now,
            network=AlertNetwork(allow_http=False),
            secret_keys=None,
            email_enabled=False,
        )
    return Principal(tenant.tenant_id, tenant.key_id)


async def _run(db: Database, principal: Principal, messages: int, concurrency: int) -> float:
    policy = SubmitPolicy(provider="simulator")
    new = NewMessage(to="+15005550006", message="Your code is 123456")
    left = iter(range(messages))

    async def worker() -> None:
        for _ in left:
            await submit_message(db, policy, principal, new)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started


async def main(url: str, messages: int, concurrency: int, rounds: int) -> None:
    db = Database(url)
    await db.migrate()
    try:
        principals = {mode: await _tenant(db, mode) for mode in MODES}
        for mode in MODES:
            await _run(db, principals[mode], min(100, messages), concurrency)  # warm up
        times: dict[str, list[float]] = {mode: [] for mode in MODES}
        for _ in range(rounds):  # modes interleaved, so load changes hit each alike
            for mode in MODES:
                times[mode].append(await _run(db, principals[mode], messages, concurrency))
        for mode in MODES:
            elapsed = statistics.median(times[mode])
            print(
                f"{mode:>10}: {messages / elapsed:8.0f} submits/s (median of {rounds} rounds "
                f"of {messages} messages, concurrency {concurrency})"
            )
    finally:
        await db.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'bench.db'}"
        asyncio.run(main(url, args.messages, args.concurrency, args.rounds))
