"""The bulk expander: a crash after the 202 loses nothing, and no recipient becomes two messages."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from smsrelay.dispatch.bulk_expander import BulkExpander, ExpanderConfig
from smsrelay.services.bulk import NewBulk, submit_bulk
from smsrelay.services.prices import tenant_policy
from smsrelay.services.submit import SubmitPolicy
from smsrelay.store.bulks import BulkRepository
from smsrelay.store.database import Database
from smsrelay.store.tables import bulks, message_events, messages
from tests.integration.world import Clock, World

N = 230
NUMBERS = [f"+1415555{n:04d}" for n in range(1000, 1000 + N)]


async def accept(world: World, count: int = N) -> str:
    new = NewBulk(
        message="Hello {{name}}",
        recipients=[(n, None) for n in NUMBERS[:count]],
        variables={"name": "you"},
        tags=["t"],
    )
    answer = await submit_bulk(
        world.db,
        SubmitPolicy(provider="fake"),
        world.principal,
        new,
        key=None,
        request_hash="",
        render=lambda accepted: {"bulkId": accepted.bulk_id},
        clock=world.clock,
    )
    return str(answer.body["bulkId"])


def expander(world: World, name: str, chunk: int = 50) -> BulkExpander:
    async def policy_for(tenant_id: str) -> SubmitPolicy:
        return await tenant_policy(world.db, SubmitPolicy(provider="fake"), tenant_id)

    config = ExpanderConfig(chunk_size=chunk, lease_seconds=30)
    return BulkExpander(world.db, policy_for, config=config, name=name, clock=world.clock)


async def counts(db: Database, bulk_id: str) -> tuple[int, int, int]:
    async with db.reading() as connection:
        total = await connection.scalar(select(func.count()).where(messages.c.bulk_id == bulk_id))
        distinct = await connection.scalar(
            select(func.count(func.distinct(messages.c.recipient))).where(
                messages.c.bulk_id == bulk_id
            )
        )
        created = await connection.scalar(
            select(func.count())
            .select_from(message_events.join(messages))
            .where(messages.c.bulk_id == bulk_id, message_events.c.kind == "created")
        )
    return int(total or 0), int(distinct or 0), int(created or 0)


async def bulk_row(db: Database, bulk_id: str) -> dict[str, object]:
    async with db.reading() as connection:
        row = (await connection.execute(select(bulks).where(bulks.c.id == bulk_id))).mappings()
        return dict(row.one())


async def test_a_crash_midway_is_resumed_by_another_worker_exactly_once(db: Database) -> None:
    world = await World.create(db, Clock())
    bulk_id = await accept(world)

    first = expander(world, "crashed")
    assert await first.run_once(max_chunks=2) == 100  # then the process dies, lease held
    assert await counts(db, bulk_id) == (100, 100, 100)
    stored = await bulk_row(db, bulk_id)
    assert stored["status"] == "expanding" and stored["expanded_count"] == 100

    second = expander(world, "survivor")
    assert await second.run_once() == 0  # the lease is still the crashed worker's
    world.clock.advance(31)
    assert await second.run_once() == N - 100
    assert await counts(db, bulk_id) == (N, N, N)
    stored = await bulk_row(db, bulk_id)
    assert stored["status"] == "ready" and stored["lease_owner"] is None

    # The crashed worker wakes up holding a stale view: its fence refuses it.
    assert await first.run_once() == 0
    stale = stored | {"expanded_count": 100, "status": "expanding", "lease_owner": "crashed"}
    assert await first.expand(stale) == 0
    assert await counts(db, bulk_id) == (N, N, N)


async def test_a_chunk_that_fails_midway_writes_nothing(db: Database) -> None:
    world = await World.create(db, Clock())
    bulk_id = await accept(world, 120)
    broken = expander(world, "broken")

    async def failing_debit(*_: object) -> None:
        raise RuntimeError("the process died inside the chunk's transaction")

    broken.debit = failing_debit
    bulk = await claim(world, "broken")
    with pytest.raises(RuntimeError):
        await broken.expand(bulk)
    assert await counts(db, bulk_id) == (0, 0, 0)
    assert (await bulk_row(db, bulk_id))["expanded_count"] == 0

    world.clock.advance(31)
    assert await expander(world, "next").run_once() == 120
    assert await counts(db, bulk_id) == (120, 120, 120)


async def claim(world: World, name: str) -> dict[str, object]:
    async with world.db.transaction() as connection:
        row = await BulkRepository(connection).claim(name, world.clock.now, timedelta(seconds=30))
    assert row is not None
    return dict(row)


async def test_two_expanders_at_once_never_write_a_recipient_twice(db: Database) -> None:
    world = await World.create(db, Clock())
    bulk_id = await accept(world)
    one, two = expander(world, "one", chunk=20), expander(world, "two", chunk=20)
    written = 0
    for _ in range(30):
        written += await one.run_once(max_chunks=1) + await two.run_once(max_chunks=1)
        world.clock.advance(31)  # every lease runs out between turns: the two alternate
    assert written == N
    assert await counts(db, bulk_id) == (N, N, N)
