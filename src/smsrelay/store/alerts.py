"""SQL for a tenant's alert settings and the alerts waiting to be delivered."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from smsrelay.store.tables import alert_settings, alerts

PENDING = "pending"
DELIVERED = "delivered"
FAILED = "failed"


class AlertRepository:
    """Reads and writes alert settings and alert rows inside the caller's transaction."""

    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection

    async def settings(self, tenant_id: str) -> RowMapping | None:
        query = select(alert_settings).where(alert_settings.c.tenant_id == tenant_id)
        return (await self.connection.execute(query)).mappings().first()

    async def save_settings(self, tenant_id: str, values: dict[str, Any]) -> None:
        """Replace the tenant's settings (insert the first time)."""
        changed = await self.connection.execute(
            update(alert_settings).where(alert_settings.c.tenant_id == tenant_id).values(values)
        )
        if changed.rowcount:
            return
        try:
            async with self.connection.begin_nested():
                await self.connection.execute(
                    insert(alert_settings).values(tenant_id=tenant_id, **values)
                )
        except IntegrityError:  # a concurrent first save won; ours replaces it
            await self.connection.execute(
                update(alert_settings).where(alert_settings.c.tenant_id == tenant_id).values(values)
            )

    async def add_once(self, rows: Sequence[dict[str, Any]]) -> int:
        """Insert alert rows, skipping any whose `dedupe_key` exists; how many were new."""
        added = 0
        for row in rows:
            try:
                async with self.connection.begin_nested():
                    await self.connection.execute(insert(alerts).values(row))
            except IntegrityError:
                continue
            added += 1
        return added

    async def claim_due(self, now: datetime, lease: timedelta, limit: int) -> list[RowMapping]:
        """Pending alerts due now, pushed `lease` ahead so no other loop takes them meanwhile."""
        due = (
            select(alerts.c.id)
            .where(alerts.c.state == PENDING, alerts.c.next_attempt_at <= now)
            .order_by(alerts.c.next_attempt_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        ids = list((await self.connection.execute(due)).scalars())
        if not ids:
            return []
        claimed = (
            update(alerts)
            .where(alerts.c.id.in_(ids), alerts.c.state == PENDING)
            .values(next_attempt_at=now + lease, attempts=alerts.c.attempts + 1)
            .returning(*alerts.c)
        )
        return list((await self.connection.execute(claimed)).mappings().all())

    async def finish(self, alert_id: str, **values: Any) -> None:
        await self.connection.execute(update(alerts).where(alerts.c.id == alert_id).values(values))

    async def for_tenant(self, tenant_id: str, limit: int = 100) -> list[RowMapping]:
        query = (
            select(alerts)
            .where(alerts.c.tenant_id == tenant_id)
            .order_by(alerts.c.created_at.desc(), alerts.c.id)
            .limit(limit)
        )
        return list((await self.connection.execute(query)).mappings().all())
