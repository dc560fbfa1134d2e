"""Several processes dispatching from one database send every message exactly once."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from smsrelay.providers.simulator.config import SimulatorConfig
from smsrelay.providers.simulator.server import SimulatorServer
from smsrelay.services.tenants import create_tenant
from smsrelay.store.database import Database
from smsrelay.store.tables import message_events
from tests.integration.conftest import free_socket

SMSRELAY = str(Path(sys.executable).with_name("smsrelay"))
MESSAGES = 400


@pytest.fixture
async def simulator() -> AsyncIterator[SimulatorServer]:
    server = SimulatorServer(SimulatorConfig(step_delay=0.01))
    server.faults.latency = 0.01  # a provider round trip, so claims overlap in time
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in started:
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _env(database_url: str, simulator: SimulatorServer, public_url: str) -> dict[str, str]:
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
        "SMSRELAY_DISPATCH_CONCURRENCY": "8",
        "SMSRELAY_DISPATCH_BATCH_SIZE": "5",
        "SMSRELAY_DISPATCH_POLL_SECONDS": "0.02",
    }


async def _wait_healthy(url: str, process: subprocess.Popen[bytes]) -> None:
    async with httpx.AsyncClient() as client, asyncio.timeout(20):
        while True:
            assert process.poll() is None, "smsrelay serve exited"
            try:
                if (await client.get(f"{url}/healthz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)


async def _worker_of_each_message(db: Database) -> dict[str, str]:
    from sqlalchemy import select

    async with db.transaction() as connection:
        rows = await connection.execute(
            select(message_events.c.message_id, message_events.c.data).where(
                message_events.c.kind == "attempt_started"
            )
        )
        return {row[0]: str(row[1]["worker"]).rsplit(":", 1)[0] for row in rows}


async def test_api_and_two_workers_send_each_message_exactly_once(
    db: Database,
    database_url: str,
    simulator: SimulatorServer,
    processes: list[subprocess.Popen[bytes]],
) -> None:
    sock = free_socket()
    port = sock.getsockname()[1]
    sock.close()
    url = f"http://127.0.0.1:{port}"
    env = _env(database_url, simulator, url)
    serve = subprocess.Popen(
        [SMSRELAY, "serve", "--port", str(port)], env=env, stderr=subprocess.DEVNULL
    )
    processes.append(serve)
    processes += [
        subprocess.Popen([SMSRELAY, "worker"], env=env, stderr=subprocess.DEVNULL) for _ in range(2)
    ]
    await _wait_healthy(url, serve)
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
