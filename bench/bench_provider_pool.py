"""Measure what resolving a message's provider costs per send: database queries and microseconds."""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import event

from smsrelay.bootstrap import bootstrap
from smsrelay.config import load_settings
from smsrelay.providers.fake import FakeProvider
from smsrelay.services.secrets import generate_key
from smsrelay.services.tenants import create_tenant

ACCOUNT = {"accountSid": "AC" + "1a" * 16, "authToken": "5f" * 16, "fromNumber": "+15005550006"}


async def measure(sends: int, tenants: int, batch: int) -> None:
    with tempfile.TemporaryDirectory() as directory:
        url = f"sqlite:///{Path(directory) / 'bench.db'}"
        container = bootstrap(load_settings(database_url=url, secret_keys=generate_key()))
        await container.db.migrate()
        pool, configs = container.pool, container.provider_configs
        pool.platform = {"twilio": FakeProvider(name="twilio")}
        rows = []
        for number in range(tenants):
            tenant = (await create_tenant(container.db, f"t{number}")).tenant_id
            config_id = None
            if number % 2 == 0:  # half the tenants bring their own verified account
                saved = await configs.save(tenant, "twilio", ACCOUNT, datetime.now(UTC))
                await _mark_verified(container, saved.config_id, saved.version)
                config_id = saved.config_id
            rows.append(_row(tenant, config_id))
        queries = _count_queries(container.db.engine.sync_engine)
        started = time.perf_counter()
        for first in range(0, sends, batch):
            claimed = [rows[n % tenants] for n in range(first, min(first + batch, sends))]
            await pool.prepare(claimed)
            for row in claimed:
                await pool.for_send(row, "bench")  # type: ignore[arg-type]
        elapsed = time.perf_counter() - started
        print(f"{sends} sends, {tenants} tenants (half with their own account), batches of {batch}")
        print(f"  {queries[0]} database queries ({queries[0] / sends:.4f} per send)")
        print(f"  {elapsed / sends * 1e6:.1f} µs per send to resolve its provider")
        await pool.close()
        await container.db.dispose()


async def _mark_verified(container: Any, config_id: str, version: int) -> None:
    from smsrelay.store.provider_configs import ProviderConfigRepository

    async with container.db.transaction() as connection:
        await ProviderConfigRepository(connection).mark_verified(
            config_id, version, datetime.now(UTC)
        )


def _row(tenant: str, config_id: str | None) -> dict[str, Any]:
    return {
        "id": "sms_bench",
        "tenant_id": tenant,
        "provider": "twilio",
        "provider_config_id": config_id,
    }


def _count_queries(engine: Any) -> list[int]:
    counter = [0]

    @event.listens_for(engine, "before_cursor_execute")
    def _count(*_: Any) -> None:
        counter[0] += 1

    return counter


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sends", type=int, default=100_000)
    parser.add_argument("--tenants", type=int, default=20)
    parser.add_argument("--batch", type=int, default=50, help="claims per dispatcher round")
    args = parser.parse_args()
    asyncio.run(measure(args.sends, args.tenants, args.batch))


if __name__ == "__main__":
    main()
