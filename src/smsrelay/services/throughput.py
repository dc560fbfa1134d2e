"""A tenant's throughput per sender: set, show and remove the rate its messages are paced at."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy.engine import RowMapping

from smsrelay.domain import senders, throughput
from smsrelay.services.errors import InvalidRequest, NotFound
from smsrelay.store.database import Database
from smsrelay.store.pacing import SenderThroughputRepository
from smsrelay.store.tenants import TenantRepository

DEFAULT_SOURCE = "tenant override"
Origin = Literal["tenant", "deployment", "default"]


@dataclass(frozen=True, slots=True)
class SenderRate:
    """The rate a sender is paced at for one tenant, and where the figure comes from.

    `origin` is `tenant` (set through the API or CLI), `deployment` (SMSRELAY_SENDER_THROUGHPUT)
    or `default` (the kind table, which applies to carriers only, not to the simulator).
    """

    sender: str
    kind: str
    segments_per_second: int
    origin: Origin
    source: str
    updated_at: datetime | None = None


async def set_sender_rate(
    db: Database, tenant_id: str, sender: str, rate: int, source: str | None, now: datetime
) -> SenderRate:
    """Store the tenant's rate for `sender` (replacing any); it applies on any provider."""
    value = _sender(sender)
    if not 1 <= rate <= throughput.MAX_SEGMENTS_PER_SECOND:
        raise InvalidRequest(
            "segmentsPerSecond",
            f"must be a whole number from 1 to {throughput.MAX_SEGMENTS_PER_SECOND}",
        )
    text = (source or "").strip() or DEFAULT_SOURCE
    async with db.transaction() as connection:
        if not await TenantRepository(connection).tenant_exists(tenant_id):
            raise NotFound(f"no tenant {tenant_id!r}")
        await SenderThroughputRepository(connection).save(tenant_id, value, rate, text, now)
    kind = throughput.default_throughput(value).kind
    return SenderRate(value, kind, rate, "tenant", text, now)


async def sender_rate(
    db: Database, tenant_id: str, sender: str, deployment: Mapping[str, int]
) -> SenderRate:
    """The rate that applies to the tenant's messages from `sender` on a carrier."""
    value = _sender(sender)
    async with db.reading() as connection:
        own = await SenderThroughputRepository(connection).get(tenant_id, value)
    if own is not None:
        return _rate(own)
    default = throughput.default_throughput(value)
    if value in deployment:
        source = "SMSRELAY_SENDER_THROUGHPUT"
        return SenderRate(value, default.kind, deployment[value], "deployment", source)
    return SenderRate(value, default.kind, default.segments_per_second, "default", default.source)


async def list_sender_rates(db: Database, tenant_id: str) -> list[SenderRate]:
    """The tenant's own rates, by sender."""
    async with db.reading() as connection:
        rows = await SenderThroughputRepository(connection).for_tenant(tenant_id)
    return [_rate(row) for row in rows]


async def remove_sender_rate(db: Database, tenant_id: str, sender: str) -> None:
    """Forget the tenant's rate (the deployment's or the kind's applies again)."""
    value = _sender(sender)
    async with db.transaction() as connection:
        removed = await SenderThroughputRepository(connection).remove(tenant_id, value)
    if not removed:
        raise NotFound(f"no throughput set for sender {value!r}; nothing to remove")


def _sender(sender: str) -> str:
    try:
        return throughput.canonical_sender(sender)
    except senders.InvalidSender as exc:
        raise InvalidRequest("sender", str(exc)) from None


def _rate(row: RowMapping) -> SenderRate:
    return SenderRate(
        row["sender"],
        throughput.default_throughput(row["sender"]).kind,
        int(row["segments_per_second"]),
        "tenant",
        row["source"],
        row["updated_at"],
    )
