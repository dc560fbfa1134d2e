"""The short-lived cache of verified API keys: revocations still take effect within seconds."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from smsrelay.services.tenants import (
    KEY_CACHE_SECONDS,
    KeyCache,
    KeyPrincipal,
    create_key,
    revoke_key,
)
from smsrelay.store.tenants import TenantRepository
from tests.integration.conftest import Api


class Ticks:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


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


def test_an_expired_key_is_not_answered_from_the_cache() -> None:
    cache = KeyCache(clock=Ticks())
    now = datetime(2026, 3, 1, 12, tzinfo=UTC)
    principal = KeyPrincipal(tenant_id="ten_1", key_id="key_1", scopes=frozenset({"send"}))
    cache.put("hash", principal, expires_at=now + timedelta(seconds=1))
    assert cache.get("hash", now) == principal
    assert cache.get("hash", now + timedelta(seconds=1)) is None


def test_the_cache_stays_bounded() -> None:
    cache = KeyCache(clock=Ticks(), max_entries=2)
    principal = KeyPrincipal(tenant_id="ten_1", key_id="key_1")
    for key_hash in ("a", "b", "c"):
        cache.put(key_hash, principal, None)
    now = datetime(2026, 3, 1, 12, tzinfo=UTC)
    assert [cache.get(h, now) for h in ("a", "b", "c")] == [None, None, principal]


async def test_a_revocation_here_beats_a_lookup_that_was_already_running(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    created = await create_key(api.container.db, api.tenant_id, scopes=frozenset({"read"}))
    reading, release = asyncio.Event(), asyncio.Event()
    key_by_prefix = TenantRepository.key_by_prefix

    async def slow_first_read(repository: TenantRepository, prefix: str) -> Any:
        row = await key_by_prefix(repository, prefix)
        if not release.is_set():
            reading.set()
            await release.wait()
        return row

    monkeypatch.setattr(TenantRepository, "key_by_prefix", slow_first_read)
    before = asyncio.create_task(_status(api, created.api_key))
    await reading.wait()  # a request's lookup has read the key, still active, and is paused
    await revoke_key(api.container.db, created.info.key_id, cache=api.container.key_cache)
    after = asyncio.create_task(_status(api, created.api_key))  # sent once the revoke answered
    await asyncio.sleep(0.05)
    release.set()
    assert await before == 200  # it was in flight before the revocation
    assert await after == 401
    assert await _status(api, created.api_key) == 401
