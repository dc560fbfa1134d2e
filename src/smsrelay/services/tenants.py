"""Tenants and their API keys: created once, shown once, stored only as a hash."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import update

from smsrelay.domain.ids import new_id
from smsrelay.services.errors import NotAuthenticated, NotFound
from smsrelay.services.submit import Principal
from smsrelay.store.database import Database
from smsrelay.store.tables import api_keys
from smsrelay.store.tenants import TenantRepository

KEY_PREFIX = "sr"


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


async def create_tenant(db: Database, name: str) -> CreatedTenant:
    """A tenant with its first API key; the key is returned here and never again."""
    if not name.strip():
        raise ValueError("tenant name must not be empty")
    now = datetime.now(UTC)
    tenant_id, key_id = new_id("ten"), new_id("key")
    prefix, raw = _new_key()
    async with db.transaction() as connection:
        repository = TenantRepository(connection)
        await repository.add_tenant(tenant_id, name.strip(), now)
        await repository.add_key(key_id, tenant_id, prefix, hash_key(raw), "default", now)
    return CreatedTenant(tenant_id=tenant_id, name=name.strip(), api_key=raw, key_id=key_id)


async def authenticate(db: Database, raw_key: str | None) -> Principal:
    """The tenant behind a bearer key, or `NotAuthenticated` saying what is wrong."""
    if not raw_key:
        raise NotAuthenticated("missing API key: send 'Authorization: Bearer <apiKey>'")
    parts = raw_key.split("_")
    if len(parts) < 3 or parts[0] != KEY_PREFIX:
        raise NotAuthenticated("unknown API key")
    async with db.transaction() as connection:
        row = await TenantRepository(connection).key_by_prefix(parts[1])
    if row is None or not hmac.compare_digest(row["key_hash"], hash_key(raw_key)):
        raise NotAuthenticated("unknown API key")
    if row["revoked_at"] is not None:
        raise NotAuthenticated("this API key was revoked; create a new one")
    return Principal(tenant_id=row["tenant_id"], key_id=row["id"])


async def revoke_key(db: Database, key_id: str) -> None:
    async with db.transaction() as connection:
        result = await connection.execute(
            update(api_keys)
            .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
            .values(revoked_at=datetime.now(UTC))
        )
    if not result.rowcount:
        raise NotFound(f"no active API key {key_id}")
