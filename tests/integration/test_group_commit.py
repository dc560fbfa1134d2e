"""GroupCommit on a real database: batches, their order, a failing batch, a caller that gives up."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from smsrelay.store.database import Database
from smsrelay.store.group_commit import GroupCommit
from smsrelay.store.tables import unmatched_callbacks as shelf

AT = datetime(2026, 11, 29, 12, tzinfo=UTC)


async def shelve(connection: AsyncConnection, keys: Sequence[str]) -> list[str]:
    """One row per key (a key stored before breaks the batch: the column is unique)."""
    rows = [
        {"provider_message_id": "SM1", "dedupe_key": k, "received_at": AT, "payload": {}}
        for k in keys
    ]
    await connection.execute(insert(shelf), rows)
    return [f"stored {key}" for key in keys]


async def stored(db: Database) -> list[str]:
    async with db.reading() as connection:
        return list(await connection.scalars(select(shelf.c.dedupe_key).order_by(shelf.c.id)))


async def test_a_lone_caller_commits_at_once(db: Database) -> None:
    group = GroupCommit(db, shelve)
    assert await asyncio.wait_for(group.submit("a"), timeout=5) == "stored a"
    assert group.batches == 1
    assert await stored(db) == ["a"]


async def test_concurrent_callers_share_a_batch_and_get_their_own_results_in_order(
    db: Database,
) -> None:
    group = GroupCommit(db, shelve)
    keys = [f"k{i}" for i in range(50)]
    results = await asyncio.gather(*(group.submit(k) for k in keys))
    assert results == [f"stored {k}" for k in keys]
    assert group.batches == 1
    assert await stored(db) == keys


async def test_batches_are_cut_at_max_batch(db: Database) -> None:
    group = GroupCommit(db, shelve, max_batch=8)
    keys = [f"k{i}" for i in range(20)]
    await asyncio.gather(*(group.submit(k) for k in keys))
    assert group.batches == 3
    assert await stored(db) == keys


async def test_a_failing_batch_is_retried_in_parts_and_only_its_culprit_fails(
    db: Database,
) -> None:
    group = GroupCommit(db, shelve)
    await group.submit("taken")
    results = await asyncio.gather(
        group.submit("a"), group.submit("taken"), group.submit("b"), return_exceptions=True
    )
    assert results[0] == "stored a" and results[2] == "stored b"
    assert isinstance(results[1], IntegrityError)
    assert group.batches == 3  # "taken", then "a" and "b" apart: the shared batch rolled back
    assert await stored(db) == ["taken", "a", "b"]


async def test_one_bad_item_in_a_large_batch_costs_a_few_transactions_not_one_each(
    db: Database,
) -> None:
    group = GroupCommit(db, shelve)
    await group.submit("taken")
    keys = [f"k{i:02d}" for i in range(32)]
    keys[19] = "taken"
    results = await asyncio.gather(*(group.submit(k) for k in keys), return_exceptions=True)
    assert [type(r) for r in results].count(IntegrityError) == 1
    assert isinstance(results[19], IntegrityError)
    assert 1 + 2 <= group.batches <= 1 + 2 * 5  # the halves that held only good items
    assert await stored(db) == ["taken", *(k for k in keys if k != "taken")]  # still in order


async def test_a_canceled_caller_s_item_is_still_written(db: Database) -> None:
    group = GroupCommit(db, shelve)
    caller = asyncio.create_task(group.submit("given up"))
    await asyncio.sleep(0)  # queued
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    await group.close()
    assert await stored(db) == ["given up"]
    assert await group.submit("next") == "stored next"
