"""Several processes dispatching from one database send every message exactly once."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from sqlalchemy import select

from smsrelay.providers.simulator.config import SimulatorConfig
from smsrelay.providers.simulator.server import SimulatorServer
from smsrelay.services.tenants import create_tenant
from smsrelay.store.database import Database
from smsrelay.store.tables import message_events
from tests.chaos_harness import Fleet, free_port, process_env, wait_healthy

MESSAGES = 400


@pytest.fixture
async def simulator() -> AsyncIterator[SimulatorServer]:
    server = SimulatorServer(SimulatorConfig(step_delay=0.01))
    server.faults.latency = 0.01  # a provider round trip, so claims overlap in time
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
def fleet(database_url: str, simulator: SimulatorServer) -> Iterator[Fleet]:
    port = free_port()
    env = process_env(database_url, simulator, f"http://127.0.0.1:{port}", concurrency=8)
    env["SMSRELAY_DISPATCH_BATCH_SIZE"] = "5"
    fleet = Fleet(env, port)
    fleet.start_api(dispatch=True)
    fleet.start_worker()
    fleet.start_worker()
    yield fleet
    fleet.stop()


async def _worker_of_each_message(db: Database) -> dict[str, str]:
    async with db.reading() as connection:
        rows = await connection.execute(
            select(message_events.c.message_id, message_events.c.data).where(
                message_events.c.kind == "attempt_started"
            )
        )
        return {row[0]: str(row[1]["worker"]).rsplit(":", 1)[0] for row in rows}


async def test_api_and_two_workers_send_each_message_exactly_once(
    db: Database, simulator: SimulatorServer, fleet: Fleet
) -> None:
    url = f"http://127.0.0.1:{fleet.port}"
    await wait_healthy(url)
    tenant = await create_tenant(db, "acme")
    headers = {"Authorization": f"Bearer {tenant.api_key}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as client:
        limit = asyncio.Semaphore(16)

        async def send(index: int) -> str:
            async with limit:
                response = await client.post(
                    "/api/sms/send", json={"to": "+15005550006", "message": f"message {index}"}
                )
            assert response.status_code == 202, response.text
            return str(response.json()["outboxId"])

        ids = await asyncio.gather(*(send(i) for i in range(MESSAGES)))
        async with asyncio.timeout(90):
            while len(simulator.state.accepted) < MESSAGES:
                await asyncio.sleep(0.1)
        await asyncio.sleep(0.5)  # time for a duplicate, if any, to arrive
    bodies = Counter(message.body for message in simulator.state.accepted)
    assert len(simulator.state.accepted) == MESSAGES
    assert set(bodies.values()) == {1}
    workers = await _worker_of_each_message(db)
    assert set(workers) == set(ids)
    assert len(set(workers.values())) >= 2, Counter(workers.values())
