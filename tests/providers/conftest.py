"""Fixtures for provider tests: a running simulator, the official SDK on it, a raw session."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator

import aiohttp
import pytest
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.rest import Client

from smsrelay.providers.simulator import SimulatorConfig, SimulatorServer


@pytest.fixture
async def simulator() -> AsyncIterator[SimulatorServer]:
    server = SimulatorServer(SimulatorConfig(step_delay=0.01))
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def twilio_sdk(simulator: SimulatorServer) -> AsyncIterator[Client]:
    """The official SDK's async client, pointed at the simulator."""
    http_client = AsyncTwilioHttpClient()
    client = Client(
        simulator.account_sid, simulator.auth_token, http_client=http_client, environment={}
    )
    client.api.base_url = simulator.base_url
    yield client
    await http_client.close()


@pytest.fixture
async def raw(simulator: SimulatorServer) -> AsyncIterator[aiohttp.ClientSession]:
    """A plain HTTP session on the simulator's base URL, authenticated as its account."""
    credentials = f"{simulator.account_sid}:{simulator.auth_token}".encode()
    headers = {"Authorization": "Basic " + base64.b64encode(credentials).decode()}
    async with aiohttp.ClientSession(simulator.base_url, headers=headers) as session:
        yield session
