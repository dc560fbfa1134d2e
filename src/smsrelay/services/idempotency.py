"""Idempotency keys: the same key and body within 24 h replays the stored answer, once.

A request with a key first claims it (`in_flight`, committed on its own), then does its work
and stores its answer in the same transaction as that work. So:
- same key, same body, finished      → the stored answer again, nothing created;
- same key, another body             → `IdempotencyMismatch` (422);
- same key while the first is running → `Conflict` (409);
- the first failed with a 4xx         → the claim is released; the key may be used again;
- a claim whose owner died            → taken over after `abandon_after`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from smsrelay.services.errors import Conflict, InvalidRequest, ServiceError
from smsrelay.store.database import Database
from smsrelay.store.tables import idempotency_keys

RETENTION = timedelta(hours=24)
MAX_KEY_LENGTH = 255

Work = Callable[[AsyncConnection], Awaitable[tuple[int, dict[str, Any]]]]


class IdempotencyMismatch(InvalidRequest):
    """The key was used before with a different body."""

    code = "idempotency_key_reused"


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: dict[str, Any]
    replayed: bool


def fingerprint(payload: Any) -> str:
    """A stable hash of a request body (key order does not matter)."""
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


async def run_once(
    db: Database,
    tenant_id: str,
    key: str,
    request_hash: str,
    work: Work,
    *,
    now: datetime | None = None,
    abandon_after: timedelta = timedelta(minutes=5),
) -> Answer:
    """Run `work` once per (tenant, key); replay its answer for repeats within 24 h."""
    _check_key(key)
    moment = now or datetime.now(UTC)
    stored = await _claim(db, tenant_id, key, request_hash, moment, abandon_after)
    if stored is not None:
        return stored
    try:
        async with db.transaction() as connection:
            status, body = await work(connection)
            await _finish(connection, tenant_id, key, status, body)
    except ServiceError:
        await _release(db, tenant_id, key)
        raise
    return Answer(status, body, replayed=False)


def _check_key(key: str) -> None:
    if not key.strip() or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise InvalidRequest(
            "Idempotency-Key", f"must be 1 to {MAX_KEY_LENGTH} printable characters"
        )


async def _claim(
    db: Database,
    tenant_id: str,
    key: str,
    request_hash: str,
    now: datetime,
    abandon_after: timedelta,
) -> Answer | None:
    async with db.transaction() as connection:
        row = await _existing(connection, tenant_id, key)
        if row is None or row["expires_at"] <= now:
            await _insert_claim(connection, tenant_id, key, request_hash, now, replace=row)
            return None
        if row["request_hash"] != request_hash:
            raise IdempotencyMismatch(
                "Idempotency-Key", "was already used with a different request body"
            )
        if row["state"] == "done":
            return _replayed(row)
        if row["created_at"] + abandon_after > now:
            raise Conflict("a request with this Idempotency-Key is still in progress; retry later")
        await _insert_claim(connection, tenant_id, key, request_hash, now, replace=row)
        return None


async def stored_answer(
    db: Database, tenant_id: str, key: str, request_hash: str, now: datetime
) -> Answer | None:
    """The answer already given to this very request (same body) under `key`, if one was and
    has not expired; reads only (a request refused now may still have been answered before)."""
    async with db.reading() as connection:
        row = (await connection.execute(_key_row(tenant_id, key))).mappings().first()
    if row is None or row["expires_at"] <= now or row["request_hash"] != request_hash:
        return None
    return _replayed(row) if row["state"] == "done" else None


def _replayed(row: Any) -> Answer:
    return Answer(row["response_status"], row["response_body"], replayed=True)


def _key_row(tenant_id: str, key: str) -> Any:
    return select(idempotency_keys).where(
        idempotency_keys.c.tenant_id == tenant_id, idempotency_keys.c.key == key
    )


async def _existing(connection: AsyncConnection, tenant_id: str, key: str) -> Any:
    query = _key_row(tenant_id, key).with_for_update()
    return (await connection.execute(query)).mappings().first()


async def _insert_claim(
    connection: AsyncConnection,
    tenant_id: str,
    key: str,
    request_hash: str,
    now: datetime,
    replace: Any,
) -> None:
    if replace is not None:
        await connection.execute(_delete(tenant_id, key))
    values = {
        "tenant_id": tenant_id,
        "key": key,
        "request_hash": request_hash,
        "state": "in_flight",
        "created_at": now,
        "expires_at": now + RETENTION,
    }
    try:
        async with connection.begin_nested():
            await connection.execute(insert(idempotency_keys).values(**values))
    except IntegrityError:
        raise Conflict(
            "a request with this Idempotency-Key is still in progress; retry later"
        ) from None


async def _finish(
    connection: AsyncConnection, tenant_id: str, key: str, status: int, body: dict[str, Any]
) -> None:
    await connection.execute(
        update(idempotency_keys)
        .where(idempotency_keys.c.tenant_id == tenant_id, idempotency_keys.c.key == key)
        .values(state="done", response_status=status, response_body=body)
    )


async def _release(db: Database, tenant_id: str, key: str) -> None:
    async with db.transaction() as connection:
        await connection.execute(_delete(tenant_id, key))


def _delete(tenant_id: str, key: str) -> Any:
    return delete(idempotency_keys).where(
        idempotency_keys.c.tenant_id == tenant_id, idempotency_keys.c.key == key
    )


async def purge_expired(db: Database, now: datetime | None = None) -> int:
    """Delete keys older than the retention window; returns how many."""
    async with db.transaction() as connection:
        result = await connection.execute(
            delete(idempotency_keys).where(
                idempotency_keys.c.expires_at <= (now or datetime.now(UTC))
            )
        )
    return int(result.rowcount or 0)
