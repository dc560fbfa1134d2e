"""Migrations build the schema the code expects, on SQLite and PostgreSQL alike."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from smsrelay.store.database import Database
from smsrelay.store.tables import metadata


def _differences(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": False})
    return list(compare_metadata(context, metadata))


async def test_upgrade_of_an_empty_database_matches_the_tables(db: Database) -> None:
    async with db.transaction() as connection:
        tables = await connection.run_sync(lambda c: set(inspect(c).get_table_names()))
        differences = await connection.run_sync(_differences)
    assert {table.name for table in metadata.sorted_tables} <= tables
    assert "alembic_version" in tables
    assert differences == []


async def test_upgrade_is_idempotent(db: Database) -> None:
    await db.migrate()
    await db.migrate()
