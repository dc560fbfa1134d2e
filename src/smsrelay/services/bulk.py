"""Accepting a broadcast: screen every recipient, store the bulk compactly, answer 202 durably.

The bulk and its accepted recipients are committed in one transaction (with the Idempotency-Key's
stored answer) before the 202 goes out; the expander (`services/bulk_expansion.py`) turns them
into outbox rows afterwards, in chunks, so a crash after the answer loses nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from sqlalchemy.ext.asyncio import AsyncConnection

from smsrelay.domain.ids import new_id
from smsrelay.domain.templates import Template
from smsrelay.services import idempotency
from smsrelay.services.bulk_screen import (
    Recipient,
    Rejection,
    Screen,
    check_template,
    screen_recipients,
)
from smsrelay.services.errors import InvalidRequest, ServiceError
from smsrelay.services.recipient_lists import members_as_recipients
from smsrelay.services.submit import Principal, SubmitPolicy, scheduled_time
from smsrelay.store.bulks import BulkRepository
from smsrelay.store.database import Database

MAX_RECIPIENTS = 100_000
PAST_GRACE = timedelta(minutes=5)  # a scheduledAt this far back still means "now"
SHOWN_WHEN_ALL_REJECTED = 100  # refusals listed in a 422 where no recipient was accepted


@dataclass(frozen=True, slots=True)
class NewBulk:
    """A broadcast as the caller asked for it: recipients or a list, and one message."""

    message: str
    recipients: Sequence[Recipient] | None = None
    list_id: str | None = None
    variables: dict[str, str] = field(default_factory=dict)
    category: str = "transactional"
    sender_id: str | None = None
    scheduled_at: datetime | None = None
    time_zone: str | None = None
    tags: list[str] = field(default_factory=list)
    custom_data: dict[str, Any] = field(default_factory=dict)
    template_key: str | None = None
    validity_seconds: int | None = None
    smart_encoding: bool = False


@dataclass(frozen=True, slots=True)
class BulkAccepted:
    bulk_id: str
    accepted_count: int
    duplicate_count: int
    rejected: list[Rejection]
    status: str
    created_at: datetime
    scheduled_at: datetime | None


def resolve_schedule(
    scheduled_at: datetime | None, time_zone: str | None, now: datetime
) -> datetime | None:
    """`scheduledAt` in UTC: as given with its offset, or a local time in `timeZone`.

    A time already past (beyond `PAST_GRACE`, for clocks and typing) is refused rather than
    sent at once: a broadcast meant for a moment that is gone is more likely a wrong date.
    """
    if time_zone is None:
        _not_past(scheduled_at, now)
        return scheduled_time(scheduled_at, now)
    zone = _zone(time_zone)
    if scheduled_at is None:
        raise InvalidRequest("scheduledAt", "is needed with timeZone: give the local time to send")
    if scheduled_at.tzinfo is not None:
        raise InvalidRequest(
            "scheduledAt",
            "has a UTC offset and timeZone is set; give the local time without an offset "
            "(e.g. 2026-03-08T09:00:00), or drop timeZone",
        )
    local = scheduled_at.replace(tzinfo=zone)
    if local.astimezone(UTC).astimezone(zone).replace(tzinfo=None) != scheduled_at:
        raise InvalidRequest(
            "scheduledAt",
            f"{scheduled_at.isoformat()} does not exist in {time_zone}: the clocks skip it "
            "(daylight saving time starts); choose a time outside the gap",
        )
    _not_past(local, now)
    return scheduled_time(local, now)


def _not_past(when: datetime | None, now: datetime) -> None:
    if when is None or when.tzinfo is None:
        return  # scheduled_time names a missing offset
    try:
        past = when.astimezone(UTC) < now - PAST_GRACE
    except OverflowError:
        return  # scheduled_time says it is out of range
    if past:
        raise InvalidRequest(
            "scheduledAt",
            f"{when.isoformat()} is in the past (now {now.replace(microsecond=0).isoformat()}); "
            "give a future time, or leave scheduledAt out to send now",
        )


# Files the zone database ships that name no place: "localtime" is the server's own zone.
NOT_PLACES: Final = frozenset({"localtime", "Factory", "posixrules"})


@cache
def _zone_names() -> frozenset[str]:
    return frozenset(available_timezones()) - NOT_PLACES


def _zone(name: str) -> ZoneInfo:
    try:
        if name not in _zone_names():
            raise ZoneInfoNotFoundError(name)
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidRequest(
            "timeZone", f"{name!r} is not an IANA time zone; use a name such as Europe/London"
        ) from None


def check_bulk(new: NewBulk, now: datetime) -> datetime | None:
    """Whole-request checks (the recipients' own are per recipient); the send time in UTC."""
    if (new.recipients is None) == (new.list_id is None):
        raise InvalidRequest("recipients", "give either recipients or listId, not both or neither")
    if new.recipients is not None and not new.recipients:
        raise InvalidRequest("recipients", "must not be empty")
    if new.recipients is not None and len(new.recipients) > MAX_RECIPIENTS:
        raise InvalidRequest(
            "recipients", f"has {len(new.recipients)} entries; the limit is {MAX_RECIPIENTS}"
        )
    return resolve_schedule(new.scheduled_at, new.time_zone, now)


@dataclass(frozen=True, slots=True)
class PreparedBulk:
    """A screened broadcast, ready to store: the bulk row, its recipients, the refusals."""

    bulk: dict[str, Any]
    recipients: list[tuple[int, str, str | None, str | None]]  # seq, phone, region, variables
    rejected: list[Rejection]

    @property
    def accepted(self) -> BulkAccepted:
        bulk = self.bulk
        return BulkAccepted(
            bulk["id"],
            bulk["accepted_count"],
            bulk["duplicate_count"],
            self.rejected,
            bulk["status"],
            bulk["created_at"],
            bulk["scheduled_at"],
        )


async def prepare_bulk(
    db: Database, policy: SubmitPolicy, principal: Principal, new: NewBulk, now: datetime
) -> PreparedBulk:
    """Screen `new`'s recipients (a list's are read first); writes nothing."""
    when = check_bulk(new, now)
    template = Template.parse(new.message)
    screen = Screen(policy, template, new.variables, new.sender_id, new.smart_encoding)
    check_template(screen)
    recipients = new.recipients
    if recipients is None:
        assert new.list_id is not None
        async with db.reading() as connection:
            recipients = await members_as_recipients(
                connection, principal.tenant_id, new.list_id, MAX_RECIPIENTS
            )
    screened = screen_recipients(screen, recipients)
    if not screened.accepted:
        _refuse_all(screened.rejected)
    bulk = _bulk_row(new_id("blk"), principal, new, when, now, len(screened.accepted))
    bulk.update(rejected_count=len(screened.rejected), duplicate_count=screened.duplicates)
    return PreparedBulk(bulk, screened.accepted, screened.rejected)


def _refuse_all(rejected: list[Rejection]) -> None:
    shown = [r.as_json() for r in rejected[:SHOWN_WHEN_ALL_REJECTED]]
    raise InvalidRequest(
        "recipients",
        f"none of the {len(rejected)} recipients can be sent to; details.rejected says why "
        "for each (fix them and send again)",
        {"rejected": shown, "rejectedCount": len(rejected)},
    )


def _bulk_row(
    bulk_id: str,
    principal: Principal,
    new: NewBulk,
    when: datetime | None,
    now: datetime,
    accepted: int,
) -> dict[str, Any]:
    return {
        "id": bulk_id,
        "tenant_id": principal.tenant_id,
        "user_id": principal.key_id,
        "status": "accepting",
        "list_id": new.list_id,
        "message": new.message,
        "variables": new.variables,
        "category": new.category,
        "sender_id": new.sender_id,
        "tags": list(dict.fromkeys(new.tags)),
        "custom_data": new.custom_data,
        "template_key": new.template_key,
        "smart_encoding": int(new.smart_encoding),
        "validity_seconds": new.validity_seconds,
        "scheduled_at": when,
        "time_zone": new.time_zone,
        "accepted_count": accepted,
        "expanded_count": 0,
        "created_at": now,
        "updated_at": now,
    }


def _utcnow() -> datetime:
    return datetime.now(UTC)


async def submit_bulk(
    db: Database,
    policy: SubmitPolicy,
    principal: Principal,
    new: NewBulk,
    *,
    key: str | None,
    request_hash: str,
    render: Callable[[BulkAccepted], dict[str, Any]],
    clock: Callable[[], datetime] = _utcnow,
) -> idempotency.Answer:
    """Accept `new` durably; under an Idempotency-Key a repeat replays the first answer."""
    now = clock()
    try:
        prepared = await prepare_bulk(db, policy, principal, new, now)  # fails before the key
    except ServiceError:
        # A retry of a request already answered gets its answer even when the request would
        # be refused now (its scheduledAt has passed, its list was deleted since).
        if key is None:
            raise
        stored = await idempotency.stored_answer(db, principal.tenant_id, key, request_hash, now)
        if stored is None:
            raise
        return stored

    async def work(connection: AsyncConnection) -> tuple[int, dict[str, Any]]:
        await BulkRepository(connection).add(prepared.bulk, prepared.recipients)
        return 202, render(prepared.accepted)

    if key is not None:
        return await idempotency.run_once(db, principal.tenant_id, key, request_hash, work)
    async with db.transaction() as connection:
        status, body = await work(connection)
    return idempotency.Answer(status, body, replayed=False)
