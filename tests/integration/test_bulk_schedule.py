"""Scheduled broadcasts: an offset, or a local time in an IANA zone (DST gaps refused); 100,000."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from smsrelay.domain.phone_batch import fast_accept
from smsrelay.services.bulk import resolve_schedule
from smsrelay.services.errors import InvalidRequest
from smsrelay.store.tables import bulk_recipients, messages
from tests.integration.conftest import Api
from tests.integration.test_bulk import bulk, expand_all, outbox_rows

NEXT_YEAR = datetime.now(UTC).year + 1


async def test_a_local_time_in_a_zone_is_stored_in_utc_and_scheduled(api: Api) -> None:
    local = f"{NEXT_YEAR - 1}-12-24T09:30:00" if datetime.now(UTC).month < 12 else None
    when = local or f"{NEXT_YEAR}-01-05T09:30:00"
    response = await bulk(
        api,
        recipients=["+14155550100"],
        message="hi",
        scheduledAt=when,
        timeZone="America/New_York",
    )
    assert response.status_code == 202, response.text
    scheduled = datetime.fromisoformat(response.json()["scheduledAt"])
    assert scheduled.utcoffset() == timedelta(0) and scheduled.hour == 14  # EST is UTC-5
    await expand_all(api)
    (row,) = await outbox_rows(api, response.json()["bulkId"])
    assert row["scheduled_at"] == scheduled and row["next_attempt_at"] == scheduled
    shown = await api.client.get(f"/api/sms/bulk/{response.json()['bulkId']}", headers=api.auth())
    assert shown.json()["timeZone"] == "America/New_York"


async def test_an_offset_works_without_a_zone(api: Api) -> None:
    when = f"{NEXT_YEAR}-06-01T09:00:00+02:00"
    response = await bulk(api, recipients=["+14155550100"], message="hi", scheduledAt=when)
    assert response.status_code == 202
    assert response.json()["scheduledAt"].startswith(f"{NEXT_YEAR}-06-01T07:00:00")


async def test_a_time_in_a_dst_gap_is_422_explaining_it(api: Api) -> None:
    # Europe/Paris skips 02:00-03:00 on the last Sunday of March.
    year = NEXT_YEAR
    last_sunday = max(
        datetime(year, 3, day) for day in range(25, 32) if datetime(year, 3, day).weekday() == 6
    )
    gap = last_sunday.replace(hour=2, minute=30).isoformat()
    response = await bulk(
        api, recipients=["+14155550100"], message="hi", scheduledAt=gap, timeZone="Europe/Paris"
    )
    assert response.status_code == 422
    message = response.json()["error"]["message"]
    assert "scheduledAt" in message and "does not exist" in message and "daylight" in message


async def test_an_offset_with_a_zone_or_a_zone_without_a_time_is_422(api: Api) -> None:
    both = await bulk(
        api,
        recipients=["+14155550100"],
        message="hi",
        scheduledAt=f"{NEXT_YEAR}-06-01T09:00:00+02:00",
        timeZone="Europe/Paris",
    )
    assert both.status_code == 422 and "without an offset" in both.json()["error"]["message"]
    alone = await bulk(api, recipients=["+14155550100"], message="hi", timeZone="Europe/Paris")
    assert alone.status_code == 422 and "scheduledAt" in alone.json()["error"]["message"]


async def test_one_hundred_thousand_recipients_are_accepted(api: Api) -> None:
    numbers: list[str] = []
    candidate = 2_012_000_000
    while len(numbers) < 100_000:
        candidate += 1
        if fast_accept(f"+1{candidate}"):
            numbers.append(f"+1{candidate}")
    response = await bulk(api, "hundred-k", recipients=numbers, message="Big news")
    assert response.status_code == 202, response.text[:300]
    body = response.json()
    assert body["acceptedCount"] == 100_000 and body["rejected"] == []
    async with api.container.db.reading() as connection:
        stored = await connection.scalar(
            select(func.count()).where(bulk_recipients.c.bulk_id == body["bulkId"])
        )
        written = await connection.scalar(select(func.count()).select_from(messages))
    assert stored == 100_000 and written == 0  # durable, written out later by the expander


async def test_a_time_already_past_is_422_not_sent_at_once(api: Api) -> None:
    past = await bulk(
        api, recipients=["+14155550100"], message="hi", scheduledAt="2020-01-01T09:00:00Z"
    )
    assert past.status_code == 422
    message = past.json()["error"]["message"]
    assert (
        "scheduledAt" in message and "in the past" in message and "leave scheduledAt out" in message
    )
    local = await bulk(
        api,
        recipients=["+14155550100"],
        message="hi",
        scheduledAt=f"{NEXT_YEAR - 2}-06-01T09:00:00",
        timeZone="Europe/London",
    )
    assert local.status_code == 422 and "in the past" in local.json()["error"]["message"]
    just_now = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()  # within the grace
    late = await bulk(api, recipients=["+14155550100"], message="hi", scheduledAt=just_now)
    assert late.status_code == 202, late.text


def test_the_past_is_judged_in_the_given_zone() -> None:
    now = datetime(2026, 11, 29, 17, 0, tzinfo=UTC)
    # 12:00 in New York is 17:00 UTC: now, so accepted; 11:50 there is 10 minutes ago.
    assert resolve_schedule(datetime(2026, 11, 29, 12, 0), "America/New_York", now) == now
    with pytest.raises(InvalidRequest, match="in the past"):
        resolve_schedule(datetime(2026, 11, 29, 11, 50), "America/New_York", now)


@pytest.mark.parametrize("zone", ["localtime", "posixrules", "right/UTC", "utc", "Mars/Olympus"])
async def test_a_zone_file_that_names_no_place_is_422(api: Api, zone: str) -> None:
    response = await bulk(
        api,
        recipients=["+14155550100"],
        message="hi",
        scheduledAt=f"{NEXT_YEAR}-06-01T09:00:00",
        timeZone=zone,
    )
    assert response.status_code == 422, response.text  # "localtime": the server's own zone
    assert "is not an IANA time zone" in response.json()["error"]["message"]
