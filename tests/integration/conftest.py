"""A real smsrelay app on a loopback port with the in-process simulator and dispatcher."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import uvicorn

from smsrelay.api.app import create_app
from smsrelay.bootstrap import Container, bootstrap
from smsrelay.config import load_settings
from smsrelay.providers.simulator.config import SimulatorConfig
from smsrelay.providers.simulator.server import SimulatorServer
from smsrelay.services.secrets import generate_key
from smsrelay.services.tenants import create_tenant
from smsrelay.store.database import Database
from tests.integration.provider_accounts import ACCOUNT_SID, AUTH_TOKEN, Accounts
from tests.providers.msg91_fake import running_fake_msg91


@dataclass
class LiveApp:
    url: str
    container: Container
    client: httpx.AsyncClient
    api_key: str
    tenant_id: str

    @property
    def simulator(self) -> SimulatorServer:
        assert self.container.setup is not None and self.container.setup.simulator is not None
        return self.container.setup.simulator

    def auth(self, key: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {key or self.api_key}"}

    async def send(self, **body: Any) -> httpx.Response:
        return await self.client.post("/api/sms/send", json=body, headers=self.auth())

    async def wait_for_status(
        self, outbox_id: str, *statuses: str, within: float = 30.0
    ) -> dict[str, Any]:
        async with asyncio.timeout(within):
            while True:
                response = await self.client.get(
                    f"/api/sms/outbox/{outbox_id}", headers=self.auth()
                )
                entry: dict[str, Any] = response.json()
                if entry["status"] in statuses:
                    return entry
                await asyncio.sleep(0.05)


def free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@pytest.fixture
async def start_app(
    database_url: str, db: Database
) -> AsyncIterator[Callable[..., Awaitable[LiveApp]]]:
    """Start the app (settings overridable) on a free port; stopped after the test."""
    started: list[tuple[uvicorn.Server, asyncio.Task[None], httpx.AsyncClient]] = []

    async def start(**overrides: Any) -> LiveApp:
        sock = free_socket()
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        settings = load_settings(
            database_url=database_url, public_url=url, dispatch_poll_seconds=0.05, **overrides
        )
        container = bootstrap(settings)
        server = uvicorn.Server(
            uvicorn.Config(create_app(container), log_level="warning", lifespan="on")
        )
        task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        client = httpx.AsyncClient(base_url=url, timeout=10)
        started.append((server, task, client))
        tenant = await create_tenant(container.db, "acme")
        return LiveApp(url, container, client, tenant.api_key, tenant.tenant_id)

    yield start
    for server, task, client in started:
        await client.aclose()
        server.should_exit = True
        await task


@dataclass
class Api:
    """The app in-process (no network, no dispatcher) with one tenant's key."""

    client: httpx.AsyncClient
    container: Container
    api_key: str
    tenant_id: str

    def auth(self, key: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {key or self.api_key}"}

    async def send(self, **body: Any) -> httpx.Response:
        return await self.client.post("/api/sms/send", json=body, headers=self.auth())


@pytest.fixture
async def api(database_url: str, db: Database) -> AsyncIterator[Api]:
    settings = load_settings(database_url=database_url, public_url="http://testserver")
    container = bootstrap(settings)
    await container.start(dispatch=False)
    app = create_app(container, manage=False)
    transport = httpx.ASGITransport(app=app, client=("203.0.113.9", 5555))
    client = httpx.AsyncClient(transport=transport, base_url="http://testserver")
    tenant = await create_tenant(container.db, "acme")
    try:
        yield Api(client, container, tenant.api_key, tenant.tenant_id)
    finally:
        await client.aclose()
        await container.stop()


# -- tenants' own provider accounts (tests/integration/provider_accounts.py) ------------------


@pytest.fixture
async def accounts() -> AsyncIterator[Accounts]:
    """The tenant's own simulator (Twilio) and fake MSG91, and a fresh SMSRELAY_SECRET_KEYS."""
    config = SimulatorConfig(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, step_delay=0.01)
    async with SimulatorServer(config) as twilio, running_fake_msg91() as msg91:
        yield Accounts(twilio, msg91, generate_key())


@pytest.fixture
async def keyed_api(database_url: str, db: Database, accounts: Accounts) -> AsyncIterator[Api]:
    """The app in-process with SMSRELAY_SECRET_KEYS set and the tenant's servers reachable."""
    settings = load_settings(
        database_url=database_url, public_url="http://testserver", **accounts.settings()
    )
    container = bootstrap(settings)
    await container.start(dispatch=False)
    transport = httpx.ASGITransport(app=create_app(container, manage=False))
    client = httpx.AsyncClient(transport=transport, base_url="http://testserver")
    tenant = await create_tenant(container.db, "acme")
    try:
        yield Api(client, container, tenant.api_key, tenant.tenant_id)
    finally:
        await client.aclose()
        await container.stop()
