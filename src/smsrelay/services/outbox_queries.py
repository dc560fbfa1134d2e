"""Reading the outbox: one entry with its history, or a filtered page with a cursor."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from smsrelay.domain import phones
from smsrelay.domain.messages import OutboxEntry
from smsrelay.services.errors import InvalidRequest, NotFound
from smsrelay.store.database import Database
from smsrelay.store.outbox import OutboxFilter, OutboxRepository, to_entry

MAX_PAGE = 200


@dataclass(frozen=True, slots=True)
class Page:
    items: list[OutboxEntry]
    next_cursor: str | None


async def get_entry(db: Database, tenant_id: str, outbox_id: str) -> OutboxEntry:
    """One entry of this tenant with its events; another tenant's id is simply not found."""
    async with db.reading() as connection:
        outbox = OutboxRepository(connection)
        row = await outbox.get_row(outbox_id, tenant_id)
        if row is None:
            raise NotFound(f"no outbox entry {outbox_id!r}")
        return to_entry(row, await outbox.events(outbox_id))


async def list_entries(db: Database, query: OutboxFilter, cursor: str | None) -> Page:
    """Newest first; `cursor` continues a previous page."""
    if not 1 <= query.limit <= MAX_PAGE:
        raise InvalidRequest("limit", f"must be between 1 and {MAX_PAGE}")
    _require_offsets(query)
    if query.recipient:
        query = replace(query, recipient=_recipient(query.recipient))
    if cursor:
        query = replace(query, before=decode_cursor(cursor))
    fetch = replace(query, limit=query.limit + 1)
    async with db.reading() as connection:
        rows = await OutboxRepository(connection).page(fetch)
    items = [to_entry(row) for row in rows[: query.limit]]
    more = len(rows) > query.limit
    return Page(items, encode_cursor(items[-1]) if more and items else None)


def _require_offsets(query: OutboxFilter) -> None:
    for name, value in (("createdFrom", query.created_from), ("createdTo", query.created_to)):
        if value is None:
            continue
        if value.tzinfo is None:
            raise InvalidRequest(name, "needs a UTC offset, e.g. 2026-01-01T00:00:00Z")
        try:
            value.astimezone(UTC)
        except OverflowError:
            raise InvalidRequest(name, "is out of range") from None


def _recipient(raw: str) -> str:
    try:
        return phones.normalize(raw).e164
    except phones.InvalidPhoneNumber as exc:
        raise InvalidRequest("recipient", str(exc)) from None


def encode_cursor(entry: OutboxEntry) -> str:
    raw = f"{entry.created_at.isoformat()}|{entry.outbox_id}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        created, outbox_id = base64.urlsafe_b64decode(padded).decode().split("|", 1)
        moment = datetime.fromisoformat(created)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidRequest("cursor", "is not a cursor this API returned") from None
    if moment.tzinfo is None or not outbox_id:
        raise InvalidRequest("cursor", "is not a cursor this API returned")
    return moment, outbox_id
