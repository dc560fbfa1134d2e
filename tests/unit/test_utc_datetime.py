"""`UTCDateTime` binds on SQLite exactly what SQLAlchemy's own two steps would store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import DateTime
from sqlalchemy.dialects import postgresql, sqlite

from smsrelay.store.tables import UTCDateTime

SQLITE = sqlite.dialect()
OFFSETS = st.integers(-23 * 60 - 59, 23 * 60 + 59).map(lambda m: timezone(timedelta(minutes=m)))
# Away from the calendar's ends, where converting to UTC would overflow.
AWARE = st.datetimes(
    min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31), timezones=OFFSETS
)


def two_steps(value: datetime) -> Any:
    """`process_bind_param`, then what SQLite's DATETIME makes of it."""
    naive = UTCDateTime().process_bind_param(value, SQLITE)
    process = DateTime().dialect_impl(SQLITE).bind_processor(SQLITE)
    assert process is not None
    return process(naive)


def bound(value: datetime | None, dialect: Any = SQLITE) -> Any:
    process = UTCDateTime().dialect_impl(dialect).bind_processor(dialect)
    assert process is not None
    return process(value)


@given(AWARE)
def test_sqlite_text_is_what_sqlalchemy_would_store(value: datetime) -> None:
    assert bound(value) == two_steps(value)


def test_whole_seconds_keep_their_microseconds() -> None:
    assert bound(datetime(2026, 11, 29, 16, 0, tzinfo=UTC)) == "2026-11-29 16:00:00.000000"


def test_none_and_naive() -> None:
    assert bound(None) is None
    with pytest.raises(ValueError, match="naive datetime"):
        bound(datetime(2026, 11, 29, 16, 0))


def test_postgresql_still_gets_the_aware_datetime() -> None:
    value = datetime(2026, 11, 29, 17, 0, tzinfo=timezone(timedelta(hours=1)))
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]  # untyped in SQLAlchemy
    assert bound(value, dialect) == datetime(2026, 11, 29, 16, 0, tzinfo=UTC)


def test_sqlite_reads_the_text_back_as_aware_utc() -> None:
    process = UTCDateTime().dialect_impl(SQLITE).result_processor(SQLITE, None)
    assert process is not None
    stored = bound(datetime(2026, 11, 29, 17, 0, 1, 5, tzinfo=timezone(timedelta(hours=1))))
    assert process(stored) == datetime(2026, 11, 29, 16, 0, 1, 5, tzinfo=UTC)
