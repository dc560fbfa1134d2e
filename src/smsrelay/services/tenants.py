"""Tenants and their scoped API keys: created once, shown once, stored only as a hash."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
import unicodedata
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, Literal

from sqlalchemy.engine import RowMapping

from smsrelay.domain.ids import new_id
from smsrelay.services.errors import InvalidRequest, NotAuthenticated, NotFound, ServiceError
from smsrelay.services.read_cache import ReadCache
from smsrelay.services.submit import Principal
from smsrelay.store.database import Database
from smsrelay.store.tenants import NewKey, TenantRepository

KEY_PREFIX = "sr"
# What each scope lets a key do; a key holds any subset.
SCOPES: dict[str, str] = {
    "send": "queue, resend and preview messages",
    "read": "read the outbox and message history",
    "admin": "create, list and revoke the tenant's API keys",
}
DEFAULT_SCOPES = frozenset({"send", "read"})
ALL_SCOPES = frozenset(SCOPES)
# `last_used_at` is written at most this often per key, not on every request.
LAST_USED_RESOLUTION = timedelta(minutes=1)
# How long a verified key is trusted without reading it again (see `KeyCache`).
KEY_CACHE_SECONDS = 2.0
_VISIBLE_PREFIX = re.compile(r"[0-9a-f]{12}")
# What any id we issue looks like; anything else cannot exist (and PostgreSQL refuses NUL bytes).
_ID = re.compile(r"[A-Za-z0-9_-]{1,40}")
KeyState = Literal["active", "revoked", "expired"]


class InsufficientScope(ServiceError):
    """The key is valid but lacks the scope the operation needs (HTTP 403)."""

    code = "insufficient_scope"


@dataclass(frozen=True, slots=True)
class KeyPrincipal(Principal):
    """A tenant acting through one API key, with that key's scopes."""

    scopes: frozenset[str] = frozenset()


# A verified key: who it acts for, and when it expires.
VerifiedKey = tuple[KeyPrincipal, datetime | None]


@dataclass
class KeyCache:
    """Keys verified in the last `ttl` seconds, by hash: no database read per request.

    A revocation made in another process (the CLI, another API process) takes effect once the
    entry is `ttl` seconds old; `revoked` makes one in this process take effect at once. An
    expired key is never answered from the cache. Failed lookups are not cached.
    """

    ttl: float = KEY_CACHE_SECONDS
    clock: Callable[[], float] = time.monotonic
    max_entries: int = 10_000
    _keys: ReadCache[str, VerifiedKey] = field(init=False)

    def __post_init__(self) -> None:
        self._keys = ReadCache(self.ttl, self.clock, self.max_entries)

    async def get(
        self, key_hash: str, now: datetime, read: Callable[[], Awaitable[VerifiedKey]]
    ) -> KeyPrincipal:
        """The key's principal, verified by `read` at most `ttl` seconds ago."""
        principal, expires_at = await self._keys.get(key_hash, read)
        if expires_at is not None and expires_at <= now:  # expired since it was read
            self._keys.forget(key_hash)
            principal, _ = await read()  # refused, saying when it expired
        return principal

    def revoked(self) -> None:
        """A key was revoked through this process: every key is read again (this is rare)."""
        self._keys.clear()


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """Everything about a key except its secret, which is never stored."""

    key_id: str
    tenant_id: str
    name: str
    prefix: str
    scopes: tuple[str, ...]
    state: KeyState
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class CreatedKey:
    """A new key: `api_key` is the secret, returned here and never again."""

    info: KeyInfo
    api_key: str


@dataclass(frozen=True, slots=True)
class CreatedTenant:
    tenant_id: str
    name: str
    api_key: str
    key_id: str


def hash_key(raw_key: str) -> str:
    """SHA-256 of a random 256-bit key: irreversible, and fast enough for every request."""
    return hashlib.sha256(raw_key.encode()).hexdigest()


def _new_key() -> tuple[str, str]:
    prefix = secrets.token_hex(6)
    return prefix, f"{KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"


def parse_scopes(names: Iterable[str]) -> frozenset[str]:
    """The scopes named (blanks ignored); `InvalidRequest` for unknown names or none at all."""
    scopes = frozenset(name.strip().lower() for name in names if name.strip())
    unknown = sorted(scopes - ALL_SCOPES)
    if unknown:
        raise InvalidRequest(
            "scopes", f"unknown scope(s) {', '.join(unknown)}; use {', '.join(SCOPES)}"
        )
    if not scopes:
        raise InvalidRequest("scopes", f"give at least one of {', '.join(SCOPES)}")
    return scopes


def _stored(scopes: frozenset[str]) -> str:
    return " ".join(name for name in SCOPES if name in scopes)


def _loaded(stored: str) -> tuple[str, ...]:
    return tuple(name for name in SCOPES if name in stored.split())


def key_state(row: RowMapping, now: datetime) -> KeyState:
    """`active`, `revoked` or `expired`."""
    if row["revoked_at"] is not None:
        return "revoked"
    if row["expires_at"] is not None and row["expires_at"] <= now:
        return "expired"
    return "active"


def _info(row: RowMapping, now: datetime) -> KeyInfo:
    return KeyInfo(
        key_id=row["id"],
        tenant_id=row["tenant_id"],
        name=row["name"],
        prefix=f"{KEY_PREFIX}_{row['prefix']}",
        scopes=_loaded(row["scopes"]),
        state=key_state(row, now),
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        last_used_at=row["last_used_at"],
        revoked_at=row["revoked_at"],
    )


async def create_tenant(db: Database, name: str) -> CreatedTenant:
    """A tenant with its first API key (every scope); the key is returned here and never again."""
    if not name.strip():
        raise ValueError("tenant name must not be empty")
    now = datetime.now(UTC)
    tenant_id = new_id("ten")
    async with db.transaction() as connection:
        repository = TenantRepository(connection)
        await repository.add_tenant(tenant_id, name.strip(), now)
        key_id, raw = await _add_key(repository, tenant_id, "default", ALL_SCOPES, None, now)
    return CreatedTenant(tenant_id=tenant_id, name=name.strip(), api_key=raw, key_id=key_id)


async def create_key(
    db: Database,
    tenant_id: str,
    *,
    name: str = "default",
    scopes: frozenset[str] = DEFAULT_SCOPES,
    expires_at: datetime | None = None,
) -> CreatedKey:
    """Another key for an existing tenant; the secret is returned here and never again."""
    now = datetime.now(UTC)
    expires_at = _checked_new_key(name, scopes, expires_at, now)
    async with db.transaction() as connection:
        repository = TenantRepository(connection)
        if not _ID.fullmatch(tenant_id) or not await repository.tenant_exists(tenant_id):
            raise NotFound(f"no tenant {tenant_id!r}")
        key_id, raw = await _add_key(repository, tenant_id, name.strip(), scopes, expires_at, now)
        row = await repository.key_by_id(key_id)
    assert row is not None
    return CreatedKey(info=_info(row, now), api_key=raw)


def _checked_new_key(
    name: str, scopes: frozenset[str], expires_at: datetime | None, now: datetime
) -> datetime | None:
    """Validate a new key's fields; the expiry comes back in UTC."""
    if not name.strip():
        raise InvalidRequest("name", "must not be empty")
    if any(unicodedata.category(char) == "Cc" for char in name):
        raise InvalidRequest("name", "must not contain control characters")
    parse_scopes(scopes)
    if expires_at is None:
        return None
    if expires_at.tzinfo is None:
        raise InvalidRequest("expiresAt", "give a time zone offset, e.g. 2030-01-01T00:00:00Z")
    try:
        expires_at = expires_at.astimezone(UTC)
    except OverflowError:
        raise InvalidRequest("expiresAt", "is out of range") from None
    if expires_at <= now:
        raise InvalidRequest("expiresAt", "must be in the future")
    return expires_at


async def _add_key(
    repository: TenantRepository,
    tenant_id: str,
    name: str,
    scopes: frozenset[str],
    expires_at: datetime | None,
    now: datetime,
) -> tuple[str, str]:
    key_id = new_id("key")
    prefix, raw = _new_key()
    await repository.add_key(
        NewKey(
            key_id=key_id,
            tenant_id=tenant_id,
            prefix=prefix,
            key_hash=hash_key(raw),
            name=name,
            scopes=_stored(scopes),
            created_at=now,
            expires_at=expires_at,
        )
    )
    return key_id, raw


async def list_keys(db: Database, tenant_id: str) -> list[KeyInfo]:
    """A tenant's keys, oldest first, without secrets; `NotFound` for an unknown tenant."""
    now = datetime.now(UTC)
    async with db.transaction() as connection:
        repository = TenantRepository(connection)
        if not _ID.fullmatch(tenant_id) or not await repository.tenant_exists(tenant_id):
            raise NotFound(f"no tenant {tenant_id!r}")
        rows = await repository.keys_of_tenant(tenant_id)
    return [_info(row, now) for row in rows]


async def authenticate(
    db: Database, raw_key: str | None, cache: KeyCache | None = None
) -> KeyPrincipal:
    """The tenant behind a bearer key, or `NotAuthenticated` saying what is wrong.

    With a `cache`, a key verified within the cache's TTL is not looked up again.
    """
    if not raw_key:
        raise NotAuthenticated("missing API key: send 'Authorization: Bearer <apiKey>'")
    parts = raw_key.split("_")
    if len(parts) < 3 or parts[0] != KEY_PREFIX or not _VISIBLE_PREFIX.fullmatch(parts[1]):
        raise NotAuthenticated("unknown API key")
    now = datetime.now(UTC)
    key_hash = hash_key(raw_key)
    look_up = partial(_look_up, db, parts[1], key_hash, now)
    if cache is None:
        principal, _ = await look_up()
        return principal
    return await cache.get(key_hash, now, look_up)


async def _look_up(db: Database, prefix: str, key_hash: str, now: datetime) -> VerifiedKey:
    async with db.reading() as connection:
        row = await TenantRepository(connection).key_by_prefix(prefix)
    principal = _usable_key(row, key_hash, now)
    assert row is not None
    if _stale(row["last_used_at"], now):
        async with db.transaction() as connection:
            await TenantRepository(connection).touch_key(row["id"], now)
    return principal, row["expires_at"]


def _usable_key(row: RowMapping | None, key_hash: str, now: datetime) -> KeyPrincipal:
    if row is None or not hmac.compare_digest(row["key_hash"], key_hash):
        raise NotAuthenticated("unknown API key")
    state = key_state(row, now)
    if state == "revoked":
        raise NotAuthenticated("this API key was revoked; create a new one")
    if state == "expired":
        expired = row["expires_at"].isoformat(timespec="seconds")
        raise NotAuthenticated(f"this API key expired at {expired}; create a new one")
    scopes = frozenset(_loaded(row["scopes"]))
    return KeyPrincipal(tenant_id=row["tenant_id"], key_id=row["id"], scopes=scopes)


def _stale(last_used_at: datetime | None, now: datetime) -> bool:
    return last_used_at is None or now - last_used_at >= LAST_USED_RESOLUTION


def ensure_scope(principal: KeyPrincipal, scope: str, *alternatives: str) -> None:
    """`InsufficientScope` naming the scopes when the caller's key holds none of them."""
    accepted = (scope, *alternatives)
    if principal.scopes.isdisjoint(accepted):
        held = ", ".join(_loaded(" ".join(principal.scopes))) or "none"
        named = " or ".join(f"'{name}'" for name in accepted)
        details: dict[str, Any] = {"requiredScope": scope, "keyScopes": sorted(principal.scopes)}
        if alternatives:
            details["acceptedScopes"] = list(accepted)
        raise InsufficientScope(
            f"this API key lacks the {named} scope (it has: {held}); use a key that has {named}",
            details,
        )


async def revoke_key(
    db: Database, key_id: str, *, tenant_id: str | None = None, cache: KeyCache | None = None
) -> KeyInfo:
    """Revoke an active key (only the tenant's own, when `tenant_id` is given).

    It stops working at once in the process holding `cache`, and within `KEY_CACHE_SECONDS`
    in every other.
    """
    now = datetime.now(UTC)
    async with db.transaction() as connection:
        repository = TenantRepository(connection)
        if not _ID.fullmatch(key_id) or not await repository.revoke_key(key_id, tenant_id, now):
            raise NotFound(f"no active API key {key_id!r}")
        row = await repository.key_by_id(key_id)
    assert row is not None
    if cache is not None:
        cache.revoked()
    return _info(row, now)
