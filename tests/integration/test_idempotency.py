"""Idempotency-Key on POST /api/sms/send: replays, mismatches, in-flight conflicts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert, update

from smsrelay.api.schemas import SendSmsRequest
from smsrelay.services.errors import Conflict
from smsrelay.services.idempotency import fingerprint, run_once
from smsrelay.store.outbox import OutboxRepository
from smsrelay.store.tables import idempotency_keys
from tests.integration.conftest import Api

BODY = {"to": "+15005550006", "message": "Your code is 1234"}


async def _post(api: Api, key: str, body: dict[str, Any] | None = None) -> Any:
    return await api.client.post(
        "/api/sms/send", json=body or BODY, headers={**api.auth(), "Idempotency-Key": key}
    )


async def _count(api: Api) -> int:
    async with api.container.db.transaction() as connection:
        return sum((await OutboxRepository(connection).count_by_status()).values())


async def test_replay_returns_the_identical_answer_and_creates_nothing(api: Api) -> None:
    first = await _post(api, "order-42")
    second = await _post(api, "order-42")
    assert first.status_code == second.status_code == 202
    assert second.json() == first.json()
    assert second.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert await _count(api) == 1


async def test_key_order_in_the_body_does_not_matter(api: Api) -> None:
    await _post(api, "k", {"message": BODY["message"], "to": BODY["to"]})
    replay = await _post(api, "k", {"to": BODY["to"], "message": BODY["message"]})
    assert replay.status_code == 202 and await _count(api) == 1


async def test_same_key_other_body_is_422_and_creates_nothing(api: Api) -> None:
    await _post(api, "order-42")
    response = await _post(api, "order-42", {**BODY, "message": "Another text"})
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "idempotency_key_reused"
    assert await _count(api) == 1


async def test_keys_are_per_tenant(api: Api) -> None:
    from smsrelay.services.tenants import create_tenant

    other = await create_tenant(api.container.db, "other")
    await _post(api, "shared-key")
    response = await api.client.post(
        "/api/sms/send",
        json=BODY,
        headers={**api.auth(other.api_key), "Idempotency-Key": "shared-key"},
    )
    assert response.status_code == 202 and response.json()["tenantId"] == other.tenant_id
    assert await _count(api) == 2


async def test_invalid_request_does_not_burn_the_key(api: Api) -> None:
    bad = await _post(api, "retry-me", {**BODY, "to": "12"})
    assert bad.status_code == 422
    good = await _post(api, "retry-me", BODY)
    assert good.status_code == 202


def _route_hash(body: dict[str, Any]) -> str:
    return fingerprint(SendSmsRequest.model_validate(body).model_dump(mode="json"))


async def _in_flight(api: Api, key: str, since: datetime) -> None:
    """Leave a claim as a request that is still being processed would."""
    async with api.container.db.transaction() as connection:
        await connection.execute(
            insert(idempotency_keys).values(
                tenant_id=api.tenant_id,
                key=key,
                request_hash=_route_hash(BODY),
                state="in_flight",
                created_at=since,
                expires_at=since + timedelta(hours=24),
            )
        )


async def test_request_still_in_flight_is_409(api: Api) -> None:
    await _in_flight(api, "busy", datetime.now(UTC))
    response = await _post(api, "busy")
    assert response.status_code == 409
    assert "in progress" in response.json()["error"]["message"]
    assert await _count(api) == 0


async def test_claim_of_a_request_that_died_is_taken_over(api: Api) -> None:
    await _in_flight(api, "orphan", datetime.now(UTC) - timedelta(minutes=10))
    response = await _post(api, "orphan")
    assert response.status_code == 202
    assert (await _post(api, "orphan")).json() == response.json()
    assert await _count(api) == 1


async def test_work_and_answer_commit_together(api: Api) -> None:
    async def broken(connection: Any) -> tuple[int, dict[str, Any]]:
        raise Conflict("nothing may be kept")

    with pytest.raises(Conflict):
        await run_once(api.container.db, api.tenant_id, "k", "h", broken)
    async with api.container.db.transaction() as connection:
        rows = (await connection.execute(idempotency_keys.select())).all()
    assert rows == []


async def test_a_key_older_than_24_hours_is_fresh_again(api: Api) -> None:
    await _post(api, "old")
    async with api.container.db.transaction() as connection:
        await connection.execute(
            update(idempotency_keys).values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    again = await _post(api, "old")
    assert again.status_code == 202 and "idempotent-replayed" not in again.headers
    assert await _count(api) == 2


@pytest.mark.parametrize("key", ["", " ", "x" * 256, "tab\there"])
async def test_bad_keys_are_422(api: Api, key: str) -> None:
    response = await _post(api, key)
    assert response.status_code == 422, response.text
    assert "Idempotency-Key" in response.json()["error"]["message"]
    assert await _count(api) == 0


def test_fingerprint_ignores_key_order_but_not_values() -> None:
    assert fingerprint({"a": 1, "b": 2}) == fingerprint({"b": 2, "a": 1})
    assert fingerprint({"a": 1}) != fingerprint({"a": 2})
