"""Per-API-key rate limits: 429 with Retry-After, in memory or shared by processes through Redis."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any

import httpx
import pytest
import redis.asyncio as redis
from redis.exceptions import ConnectionError as RedisConnectionError
from structlog.testing import capture_logs

from smsrelay.api.app import create_app
from smsrelay.bootstrap import bootstrap
from smsrelay.config import SettingsError, load_settings
from smsrelay.services.errors import RateLimited
from smsrelay.services.ratelimit import RateLimiter
from smsrelay.services.tenants import create_key, create_tenant
from smsrelay.store.database import Database

REDIS_URL = os.environ.get("SMSRELAY_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
# Every limiter key holding an API key's count (limits' moving-window key layout).
LIMIT_KEYS = "LIMITS:LIMITER/api-key/*"

Client = httpx.AsyncClient
StartClient = Callable[..., Awaitable[Client]]


@pytest.fixture
async def start_client(database_url: str, db: Database) -> AsyncIterator[StartClient]:
    """Start app instances on one database (settings overridable), each with its own client."""
    async with AsyncExitStack() as stack:

        async def start(**overrides: Any) -> Client:
            settings = load_settings(
                database_url=database_url, public_url="http://testserver", **overrides
            )
            container = bootstrap(settings)
            await container.start(dispatch=False)
            stack.push_async_callback(container.stop)
            transport = httpx.ASGITransport(app=create_app(container, manage=False))
            client = httpx.AsyncClient(transport=transport, base_url="http://testserver")
            return await stack.enter_async_context(client)

        yield start


@pytest.fixture
async def shared_redis() -> AsyncIterator[redis.Redis]:
    """The local Redis test database, with the API-key counters cleared before and after."""
    client = redis.Redis.from_url(REDIS_URL)
    try:
        await client.ping()
    except RedisConnectionError:
        await client.aclose()
        pytest.fail(f"no Redis at {REDIS_URL}: start it, or set SMSRELAY_TEST_REDIS_URL")
    await _clear(client)
    yield client
    await _clear(client)
    await client.aclose()


async def _clear(client: redis.Redis) -> None:
    async for key in client.scan_iter(match=LIMIT_KEYS):
        await client.delete(key)


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def _get(client: Client, key: str) -> httpx.Response:
    return await client.get("/api/sms/outbox", headers=_auth(key))


def _assert_limited(response: httpx.Response, window_seconds: int) -> None:
    assert response.status_code == 429, response.text
    assert 1 <= int(response.headers["retry-after"]) <= window_seconds
    error = response.json()["error"]
    assert error["code"] == "rate_limited"
    assert error["details"]["retryAfterSeconds"] == int(response.headers["retry-after"])


async def test_a_key_over_its_limit_gets_429_with_retry_after(
    start_client: StartClient, db: Database
) -> None:
    client = await start_client(api_key_rate_limit="3/minute")
    tenant = await create_tenant(db, "acme")
    for _ in range(3):
        assert (await _get(client, tenant.api_key)).status_code == 200
    _assert_limited(await _get(client, tenant.api_key), 60)
    sent = await client.post(
        "/api/sms/send",
        json={"to": "+15005550006", "message": "Hi"},
        headers=_auth(tenant.api_key),
    )
    _assert_limited(sent, 60)
    listing = await _get(client, (await create_key(db, tenant.tenant_id)).api_key)
    assert listing.status_code == 200 and listing.json()["items"] == []


async def test_requests_without_a_valid_key_do_not_use_up_a_keys_limit(
    start_client: StartClient, db: Database
) -> None:
    client = await start_client(api_key_rate_limit="2/minute")
    tenant = await create_tenant(db, "acme")
    for _ in range(5):
        assert (await _get(client, tenant.api_key + "x")).status_code == 401
    assert (await _get(client, tenant.api_key)).status_code == 200


async def test_the_default_limit_is_generous_but_finite(database_url: str) -> None:
    assert load_settings(database_url=database_url).api_key_rate_limit == "100/second"


@pytest.mark.parametrize("rule", ["fast", "0/x", "100 per fortnight"])
def test_a_bad_limit_setting_names_the_variable(monkeypatch: pytest.MonkeyPatch, rule: str) -> None:
    monkeypatch.setenv("SMSRELAY_API_KEY_RATE_LIMIT", rule)
    with pytest.raises(SettingsError, match="SMSRELAY_API_KEY_RATE_LIMIT"):
        load_settings()


async def test_two_instances_share_one_limit_through_redis(
    start_client: StartClient, db: Database, shared_redis: redis.Redis
) -> None:
    first = await start_client(api_key_rate_limit="4/minute", redis_url=REDIS_URL)
    second = await start_client(api_key_rate_limit="4/minute", redis_url=REDIS_URL)
    tenant = await create_tenant(db, "acme")
    for client in (first, second, first, second):
        assert (await _get(client, tenant.api_key)).status_code == 200
    _assert_limited(await _get(first, tenant.api_key), 60)
    _assert_limited(await _get(second, tenant.api_key), 60)
    assert [key async for key in shared_redis.scan_iter(match=LIMIT_KEYS)]


async def test_in_memory_instances_count_separately(
    start_client: StartClient, db: Database
) -> None:
    first = await start_client(api_key_rate_limit="2/minute")
    second = await start_client(api_key_rate_limit="2/minute")
    tenant = await create_tenant(db, "acme")
    for client in (first, first, second, second):
        assert (await _get(client, tenant.api_key)).status_code == 200
    _assert_limited(await _get(first, tenant.api_key), 60)


async def test_an_unreachable_redis_lets_requests_through(
    start_client: StartClient, db: Database
) -> None:
    client = await start_client(api_key_rate_limit="1/minute", redis_url="redis://127.0.0.1:1/0")
    tenant = await create_tenant(db, "acme")
    with capture_logs() as events:
        for _ in range(2):
            assert (await _get(client, tenant.api_key)).status_code == 200
    outages = [e for e in events if e["event"] == "ratelimit.storage_unavailable"]
    assert len(outages) == 2 and outages[0]["scope"] == "api-key"


@pytest.mark.parametrize("redis_url", [None, REDIS_URL])
async def test_a_limit_above_a_thousand_still_refuses_the_first_request_over_it(
    redis_url: str | None, shared_redis: redis.Redis
) -> None:
    """Counted in O(1) per request (a sliding-window counter), yet exact within a window."""
    limiter = RateLimiter("2500/hour", redis_url)
    key = f"key_{secrets.token_hex(6)}"  # the counters outlive the test in Redis
    try:
        for _ in range(2500):
            await limiter.check("api-key", key)
        with pytest.raises(RateLimited) as refused:
            await limiter.check("api-key", key)
        assert "2500 per 1 hour" in refused.value.message
        assert 1 <= refused.value.retry_after <= 3600
        await limiter.check("api-key", f"{key}_other")  # counted per key
    finally:
        await limiter.close()
