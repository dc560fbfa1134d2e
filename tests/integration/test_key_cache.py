"""The short-lived cache of verified API keys: revocations still take effect within seconds."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import pytest

from smsrelay.services.tenants import (
    KEY_CACHE_SECONDS,
    KeyCache,
    KeyPrincipal,
    NotAuthenticated,
    create_key,
    revoke_key,
)
from smsrelay.store.tenants import TenantRepository
from tests.integration.conftest import Api
from tests.timing import PausedFirstCall, Ticks


async def _status(api: Api, key: str) -> int:
    return (await api.client.get("/api/sms/outbox", headers=api.auth(key))).status_code


async def test_revocation_elsewhere_takes_effect_once_the_cache_entry_is_old(api: Api) -> None:
    ticks = Ticks()
    api.container.key_cache = KeyCache(clock=ticks)
    created = await create_key(api.container.db, api.tenant_id, scopes=frozenset({"read"}))
    assert await _status(api, created.api_key) == 200

    # As `smsrelay keys revoke` does from another process: this process's cache is not told.
    await revoke_key(api.container.db, created.info.key_id)
    ticks.now += KEY_CACHE_SECONDS - 0.1
    assert await _status(api, created.api_key) == 200  # still inside the documented window
    ticks.now += 0.1
    response = await api.client.get("/api/sms/outbox", headers=api.auth(created.api_key))
    assert response.status_code == 401 and "revoked" in response.json()["error"]["message"]


async def test_revocation_in_this_process_takes_effect_at_once(api: Api) -> None:
    api.container.key_cache = KeyCache(clock=Ticks())
    created = await create_key(api.container.db, api.tenant_id, scopes=frozenset({"read"}))
    assert await _status(api, created.api_key) == 200
    await revoke_key(api.container.db, created.info.key_id, cache=api.container.key_cache)
    assert await _status(api, created.api_key) == 401


async def test_a_wrong_secret_is_never_answered_from_the_cache(api: Api) -> None:
    assert await _status(api, api.api_key) == 200
    assert await _status(api, api.api_key[:-4] + "AAAA") == 401


async def test_an_expired_key_is_not_answered_from_the_cache() -> None:
    cache = KeyCache(clock=Ticks())
    now = datetime(2026, 3, 1, 12, tzinfo=UTC)
    principal = KeyPrincipal(tenant_id="ten_1", key_id="key_1", scopes=frozenset({"send"}))
    reads: list[datetime] = []

    async def read() -> tuple[KeyPrincipal, datetime | None]:
        reads.append(now)
        if len(reads) > 1:
            raise NotAuthenticated("this API key expired")
        return principal, now + timedelta(seconds=1)

    assert await cache.get("hash", now, read) == principal
    assert await cache.get("hash", now, read) == principal and len(reads) == 1
    with pytest.raises(NotAuthenticated, match="expired"):
        await cache.get("hash", now + timedelta(seconds=1), read)


async def test_the_cache_stays_bounded() -> None:
    cache = KeyCache(clock=Ticks(), max_entries=2)
    principal = KeyPrincipal(tenant_id="ten_1", key_id="key_1")
    reads: list[str] = []
    now = datetime(2026, 3, 1, 12, tzinfo=UTC)

    def reader(key_hash: str) -> Callable[[], Awaitable[tuple[KeyPrincipal, None]]]:
        async def read() -> tuple[KeyPrincipal, None]:
            reads.append(key_hash)
            return principal, None

        return read

    for key_hash in ("a", "b", "c", "c", "a"):
        await cache.get(key_hash, now, reader(key_hash))
    assert reads == ["a", "b", "c", "a"]  # "c" was kept; "a" had been let go to make room


async def test_a_revocation_here_beats_a_lookup_that_was_already_running(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    created = await create_key(api.container.db, api.tenant_id, scopes=frozenset({"read"}))
    paused = PausedFirstCall(TenantRepository.key_by_prefix)
    # A function, so that it binds to the repository as the method it replaces does.
    monkeypatch.setattr(
        TenantRepository, "key_by_prefix", lambda repo, prefix: paused(repo, prefix)
    )
    before = asyncio.create_task(_status(api, created.api_key))
    await paused.reached.wait()  # a request's lookup has read the key, still active, and is paused
    await revoke_key(api.container.db, created.info.key_id, cache=api.container.key_cache)
    after = asyncio.create_task(_status(api, created.api_key))  # sent once the revoke answered
    await asyncio.sleep(0.05)
    paused.release()
    assert await before == 200  # it was in flight before the revocation
    assert await after == 401
    assert await _status(api, created.api_key) == 401
