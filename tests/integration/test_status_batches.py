"""Status updates applied a batch per transaction: as if one by one, in arrival order."""

from __future__ import annotations

import asyncio

import pytest

from smsrelay.domain.status import Status
from smsrelay.providers.base import ProviderError
from smsrelay.services.delivery import StatusUpdate, status_update_group, submit_status_update
from smsrelay.store.database import Database
from smsrelay.store.outbox import OutboxRepository
from tests.integration.world import Clock, World


@pytest.fixture
async def world(db: Database) -> World:
    return await World.create(db, Clock())


async def sent_message(world: World, sid: str, status: Status = Status.SENT) -> str:
    """A message the provider accepted as `sid` and that is now `status`."""
    outbox_id = await world.submit()
    async with world.db.transaction() as connection:
        await OutboxRepository(connection).update(
            outbox_id, status=status.value, provider_message_id=sid
        )
    return outbox_id


def callback(sid: str, status: Status, key: str | None = None, **extra: object) -> StatusUpdate:
    return StatusUpdate(
        sid, status, status.value, key or f"twilio:{sid}:{status.value}", Clock().now, **extra
    )


async def provider_statuses(world: World, outbox_id: str) -> list[tuple[str | None, str | None]]:
    async with world.db.reading() as connection:
        events = await OutboxRepository(connection).events(outbox_id)
    return [(e.from_status, e.to_status) for e in events if e.kind == "provider_status"]


async def test_concurrent_callbacks_are_applied_in_few_transactions(world: World) -> None:
    ids = [await sent_message(world, f"SM{i}") for i in range(40)]
    group = status_update_group(world.db)
    updates = [callback(f"SM{i}", Status.DELIVERED, outbox_id=ids[i]) for i in range(40)]
    results = await asyncio.gather(*(submit_status_update(group, u) for u in updates))
    assert results == ["applied"] * 40
    assert group.batches == 1
    for outbox_id in ids:
        row = await world.row(outbox_id)
        assert row["status"] == "delivered" and row["delivered_at"] is not None
        assert await provider_statuses(world, outbox_id) == [("sent", "delivered")]


async def test_a_later_callback_in_the_batch_sees_the_earlier_one(world: World) -> None:
    forward = await sent_message(world, "SMf", Status.SENDING)
    backward = await sent_message(world, "SMb", Status.SENDING)
    group = status_update_group(world.db)
    updates = [
        callback("SMf", Status.SENT),
        callback("SMb", Status.DELIVERED),
        callback("SMf", Status.DELIVERED),
        callback("SMb", Status.SENT),  # out of order: never moves delivered back
        callback("SMb", Status.SENT),  # the same callback again
        callback("SMf", Status.UNDELIVERED, key="twilio:other"),
    ]
    results = await asyncio.gather(*(submit_status_update(group, u) for u in updates))
    assert results == ["applied", "applied", "applied", "ignored", "duplicate", "ignored"]
    assert group.batches == 1
    row = await world.row(forward)
    assert row["status"] == "delivered" and row["sent_at"] is not None
    assert await provider_statuses(world, forward) == [
        ("sending", "sent"),
        ("sent", "delivered"),
        ("delivered", None),
    ]
    assert (await world.row(backward))["status"] == "delivered"
    assert await provider_statuses(world, backward) == [
        ("sending", "delivered"),
        ("delivered", None),
    ]


async def test_a_duplicate_of_a_stored_callback_is_a_duplicate_in_a_batch_too(
    world: World,
) -> None:
    outbox_id = await sent_message(world, "SMd")
    group = status_update_group(world.db)
    assert await submit_status_update(group, callback("SMd", Status.DELIVERED)) == "applied"
    again = [callback("SMd", Status.DELIVERED), callback("SMd", Status.DELIVERED, key="k2")]
    results = await asyncio.gather(*(submit_status_update(group, u) for u in again))
    assert results == ["duplicate", "ignored"]
    assert await provider_statuses(world, outbox_id) == [("sent", "delivered"), ("delivered", None)]


async def test_a_callback_found_by_sid_alone_and_an_unknown_sid_in_one_batch(world: World) -> None:
    known = await sent_message(world, "SMk")
    group = status_update_group(world.db)
    updates = [callback("SMk", Status.DELIVERED), callback("SMnobody", Status.DELIVERED)]
    results = await asyncio.gather(*(submit_status_update(group, u) for u in updates))
    assert results == ["applied", "unmatched"]
    assert (await world.row(known))["status"] == "delivered"


async def test_a_bad_callback_in_a_batch_does_not_lose_the_others(world: World) -> None:
    ids = [await sent_message(world, f"SM{i}") for i in range(3)]
    unstorable = ProviderError("carrier said no", code=30003, details={"not json": {1, 2}})
    group = status_update_group(world.db)
    updates = [
        callback("SM0", Status.DELIVERED),
        callback("SM1", Status.UNDELIVERED, error=unstorable),
        callback("SM2", Status.DELIVERED),
    ]
    results = await asyncio.gather(
        *(submit_status_update(group, u) for u in updates), return_exceptions=True
    )
    assert results[0] == "applied" and results[2] == "applied"
    assert isinstance(results[1], Exception)
    assert [(await world.row(i))["status"] for i in ids] == ["delivered", "sent", "delivered"]
    assert await provider_statuses(world, ids[1]) == []
