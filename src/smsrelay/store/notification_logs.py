"""Notification log rows: one per manual test send, success or failure."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from smsrelay.store.tables import notification_logs


async def add_log(connection: AsyncConnection, row: dict[str, Any]) -> None:
    await connection.execute(insert(notification_logs).values(**row))


async def recent_logs(connection: AsyncConnection, limit: int = 50) -> list[RowMapping]:
    query = select(notification_logs).order_by(notification_logs.c.created_at.desc())
    return list((await connection.execute(query.limit(limit))).mappings().all())
