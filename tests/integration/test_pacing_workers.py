"""Two worker processes pacing one sender: no 1-second window at the provider over its rate.

The proof is read from the simulator's own request log (when each create request arrived),
on SQLite or PostgreSQL (SMSRELAY_TEST_DATABASE_URL), with the pacing state in the database
or in Redis. A correctness bound, not a timing benchmark (that is bench/bench_pacing.py).
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from collections.abc import AsyncIterator

import httpx
import pytest
import redis.asyncio as redis

from smsrelay.dispatch.buckets import REDIS_PREFIX
from smsrelay.domain.segments import analyze
from smsrelay.providers.simulator.config import SimulatorConfig
from smsrelay.providers.simulator.server import SimulatorServer
from smsrelay.services.tenants import create_tenant
from smsrelay.store.database import Database
from tests.chaos_harness import Fleet, free_port, process_env, wait_healthy
from tests.windows import max_in_window

REDIS_URL = os.environ.get("SMSRELAY_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
SENDER = "+15005550006"  # the fleet's default sender (TWILIO_FROM_PHONE_NUMBER)
RATE = 20
MESSAGES = 90  # every third one has 2 segments: 120 segments, about 6 s at 20 a second


@pytest.fixture
async def simulator() -> AsyncIterator[SimulatorServer]:
    server = SimulatorServer(SimulatorConfig(step_delay=0.01))
    await server.start()
    yield server
    await server.stop()


@pytest.fixture(params=["database", "redis"])
async def fleet(
    request: pytest.FixtureRequest, database_url: str, simulator: SimulatorServer
) -> AsyncIterator[Fleet]:
    port = free_port()
    env = process_env(database_url, simulator, f"http://127.0.0.1:{port}", concurrency=8)
    # The bound is on when a worker starts each request; the simulator stamps it on arrival, which
    # on a loaded machine (shared CI cores) can trail by tens of milliseconds more for one request
    # than for the next. A 0.3 s guard absorbs that (and costs budget, which this test ignores).
    env |= {"SMSRELAY_DISPATCH_BATCH_SIZE": "10", "SMSRELAY_PACING_GUARD_SECONDS": "0.3"}
    if request.param == "redis":
        env["SMSRELAY_REDIS_URL"] = REDIS_URL
        client = redis.Redis.from_url(REDIS_URL)
        await client.delete(REDIS_PREFIX + f"twilio|{SENDER}")
        await client.aclose()
    fleet = Fleet(env, port)
    try:
        fleet.start_api()
        fleet.start_worker()
        fleet.start_worker()
        yield fleet
    finally:
        fleet.stop()


def _body(index: int) -> str:
    return f"pacing {index} " + ("x" * 200 if index % 3 == 0 else "")


async def test_two_workers_never_exceed_the_senders_rate(
    db: Database, simulator: SimulatorServer, fleet: Fleet
) -> None:
    url = f"http://127.0.0.1:{fleet.port}"
    await wait_healthy(url)
    tenant = await create_tenant(db, "acme")
    headers = {"Authorization": f"Bearer {tenant.api_key}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as client:
        put = await client.put(
            f"/api/senders/{SENDER}/throughput", json={"segmentsPerSecond": RATE}
        )
        assert put.status_code == 200, put.text
        limit = asyncio.Semaphore(8)

        async def send(index: int) -> None:
            async with limit:
                body = {"to": "+15005550006", "message": _body(index)}
                sent = await client.post("/api/sms/send", json=body)
            assert sent.status_code == 202, sent.text

        await asyncio.gather(*(send(index) for index in range(MESSAGES)))
    async with asyncio.timeout(120):
        while len(simulator.state.accepted) < MESSAGES:
            await asyncio.sleep(0.1)
    await asyncio.sleep(0.5)  # a duplicate, if any, would arrive now
    starts = [
        (request.received_at.timestamp(), analyze(request.params["Body"]).segments)
        for request in simulator.state.requests
    ]
    assert sum(cost for _, cost in starts) == 120
    assert max_in_window(starts) <= RATE, _densest(starts)
    assert set(Counter(m.body for m in simulator.state.accepted).values()) == {1}


def _densest(starts: list[tuple[float, int]]) -> list[tuple[float, int]]:
    """The requests of the fullest window that opens at a request (seconds from its opening)."""
    ordered = sorted(starts)

    def window(first: float) -> list[tuple[float, int]]:
        return [(round(at - first, 3), cost) for at, cost in ordered if first <= at < first + 1]

    return max((window(at) for at, _ in ordered), key=lambda w: sum(cost for _, cost in w))
