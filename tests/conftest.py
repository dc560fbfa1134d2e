"""Shared fixtures: a database per test (SQLite file, or PostgreSQL when configured)."""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from smsrelay.logs import configure_logging
from smsrelay.store.database import Database
from smsrelay.store.tables import metadata
from tests.log_audit import LogAudit

REPO = Path(__file__).resolve().parents[1]
VECTORS = REPO.parent / "shared" / "vectors"
PG_URL = os.environ.get("SMSRELAY_TEST_DATABASE_URL")


def _admin(statement: str) -> None:
    """Run one statement on the server's `postgres` database (outside any transaction)."""
    assert PG_URL is not None
    url = make_url(PG_URL).set(drivername="postgresql", database="postgres")

    async def run() -> None:
        connection = await asyncpg.connect(url.render_as_string(hide_password=False))
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    asyncio.run(run())


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(LogAudit(), "smsrelay-log-audit")


@pytest.fixture(scope="session", autouse=True)
def _masked_json_logs() -> None:
    """Log as production does, so tests see (and check) the masked output."""
    configure_logging(level="INFO", json=True)


@contextmanager
def throwaway_postgres(purpose: str) -> Iterator[str | None]:
    """A PostgreSQL database of its own (None without SMSRELAY_TEST_DATABASE_URL), then dropped."""
    if not PG_URL:
        yield None
        return
    name = f"smsrelay_{purpose}_{os.getpid()}_{secrets.token_hex(3)}"
    _admin(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str | None]:
    """The session's PostgreSQL database for in-process tests (emptied before each test)."""
    with throwaway_postgres("test") as url:
        yield url


@pytest.fixture
def database_url(tmp_path: Path, postgres_database: str | None) -> str:
    """SQLite file per test, or the session's PostgreSQL database (emptied per test)."""
    if postgres_database is None:
        return f"sqlite:///{tmp_path / 'smsrelay.db'}"
    return postgres_database


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    """A migrated, empty database."""
    database = Database(database_url)
    await database.migrate()
    if not database.is_sqlite:
        await _truncate(database)
    yield database
    await database.dispose()


async def _truncate(database: Database) -> None:
    names = ", ".join(f'"{table.name}"' for table in reversed(metadata.sorted_tables))
    async with database.transaction() as connection:
        await connection.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
