"""A broadcast's progress (messages by status, cost so far) and canceling what is not yet sent."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Final

from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from smsrelay.domain.status import Status
from smsrelay.services.errors import Conflict, NotFound
from smsrelay.store.bulks import BulkRepository
from smsrelay.store.database import Database
from smsrelay.store.outbox import event_row

# Handed to the provider: these cost money. Pending ones may still cost (the estimate).
BILLED: Final = frozenset({"sending", "sent", "delivered", "undelivered"})
MAY_STILL_GO: Final = frozenset({"pending"})


@dataclass(frozen=True, slots=True)
class BulkView:
    bulk: RowMapping
    counts: dict[str, int]
    total_cost: Decimal
    estimated_cost: Decimal
    currency: str | None
    canceled_count: int | None = None


async def get_bulk(db: Database, tenant_id: str, bulk_id: str) -> BulkView:
    async with db.reading() as connection:
        return await _view(connection, tenant_id, bulk_id)


async def _view(connection: AsyncConnection, tenant_id: str, bulk_id: str) -> BulkView:
    repository = BulkRepository(connection)
    bulk = await repository.get(bulk_id, tenant_id)
    if bulk is None:
        raise NotFound(f"no bulk {bulk_id!r} for this tenant")
    counts = {status.value: 0 for status in Status}
    billed, estimated, currencies = Decimal(0), Decimal(0), set()
    for row in await repository.progress(bulk_id):
        counts[row["status"]] += row["count"]
        cost = Decimal(row["total_cost"]) * row["count"]
        currencies.add(row["currency"])
        if row["status"] in BILLED:
            billed += cost
        if row["status"] in BILLED | MAY_STILL_GO:
            estimated += cost
    currency = currencies.pop() if len(currencies) == 1 else None
    return BulkView(bulk, counts, billed, estimated, currency)


async def cancel_bulk(db: Database, tenant_id: str, bulk_id: str, now: datetime) -> BulkView:
    """Cancel the bulk's messages not yet claimed, and its recipients not yet written.

    A second cancel is harmless (nothing more to do, the same view). A bulk already fully
    written whose messages have all left `pending` has nothing to cancel: `Conflict` (409).
    """
    async with db.transaction() as connection:
        view = await _view(connection, tenant_id, bulk_id)
        bulk = view.bulk
        if bulk["status"] == "canceled":
            return replace(view, canceled_count=0)
        if bulk["status"] == "ready" and not view.counts["pending"]:
            raise Conflict(
                "nothing left to cancel: every message of this bulk was already sent or ended",
                {"counts": view.counts},
            )
        repository = BulkRepository(connection)
        await repository.mark_canceled(bulk_id, now)
        canceled = await repository.cancel_pending(bulk_id, now)
        await repository.add_events([_canceled_event(message_id, now) for message_id in canceled])
        view = await _view(connection, tenant_id, bulk_id)
    return replace(view, canceled_count=len(canceled))


def _canceled_event(message_id: str, now: datetime) -> dict[str, object]:
    return event_row(
        message_id,
        "canceled",
        now,
        from_status=Status.PENDING.value,
        to_status=Status.CANCELED.value,
        data={"reason": "bulk_canceled"},
    )
