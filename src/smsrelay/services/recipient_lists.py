"""Recipient lists: create, read, page members, delete, and hand a list's members to a bulk send."""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from smsrelay.domain.ids import new_id
from smsrelay.services.bulk_screen import Recipient
from smsrelay.services.consent import decode_cursor, paged
from smsrelay.services.errors import InvalidRequest, NotFound
from smsrelay.store.database import Database
from smsrelay.store.lists import ListRepository

MAX_NAME = 200


@dataclass(frozen=True, slots=True)
class RecipientList:
    list_id: str
    name: str
    member_count: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Member:
    phone: str
    variables: dict[str, str]
    added_at: datetime
    updated_at: datetime


def _list(row: RowMapping, count: int) -> RecipientList:
    return RecipientList(row["id"], row["name"], count, row["created_at"], row["updated_at"])


def _name(name: str) -> str:
    cleaned = name.strip()
    if not cleaned or len(cleaned) > MAX_NAME:
        raise InvalidRequest("name", f"must be 1 to {MAX_NAME} characters (not only spaces)")
    return cleaned


async def create_list(db: Database, tenant_id: str, name: str, now: datetime) -> RecipientList:
    found = RecipientList(new_id("lst"), _name(name), 0, now, now)
    row = {"id": found.list_id, "tenant_id": tenant_id, "name": found.name}
    async with db.transaction() as connection:
        await ListRepository(connection).add({**row, "created_at": now, "updated_at": now})
    return found


async def get_list(db: Database, tenant_id: str, list_id: str) -> RecipientList:
    async with db.reading() as connection:
        return await find_list(connection, tenant_id, list_id)


async def find_list(connection: AsyncConnection, tenant_id: str, list_id: str) -> RecipientList:
    """The tenant's list with its member count; `NotFound` for another tenant's or none."""
    repository = ListRepository(connection)
    row = await repository.get(list_id, tenant_id)
    if row is None:
        raise NotFound(f"no recipient list {list_id!r}; GET /api/lists shows yours")
    counts = await repository.counts([list_id])
    return _list(row, counts.get(list_id, 0))


async def list_lists(
    db: Database, tenant_id: str, cursor: str | None, limit: int
) -> tuple[list[RecipientList], str | None]:
    """Newest first, with member counts."""
    async with db.reading() as connection:
        repository = ListRepository(connection)
        rows = await repository.page(tenant_id, decode_cursor(cursor), limit + 1)
        page, next_cursor = paged(rows, limit, "created_at", "id")
        counts = await repository.counts([row["id"] for row in page])
    return [_list(row, counts.get(row["id"], 0)) for row in page], next_cursor


async def delete_list(db: Database, tenant_id: str, list_id: str) -> None:
    """Delete a list and its members (bulks already sent to it keep their own copy)."""
    async with db.transaction() as connection:
        if not await ListRepository(connection).remove(list_id, tenant_id):
            raise NotFound(f"no recipient list {list_id!r}; GET /api/lists shows yours")


async def list_members(
    db: Database, tenant_id: str, list_id: str, cursor: str | None, limit: int
) -> tuple[list[Member], str | None]:
    """Members in phone-number order; pass `nextCursor` back as `cursor`."""
    async with db.reading() as connection:
        await find_list(connection, tenant_id, list_id)
        after = _decode_member_cursor(cursor)
        rows = await ListRepository(connection).members(list_id, after, limit + 1)
    page = rows[:limit]
    next_cursor = _encode_member_cursor(page[-1]["phone"]) if len(rows) > limit else None
    return [_member(row) for row in page], next_cursor


def _encode_member_cursor(phone: str) -> str:
    return base64.urlsafe_b64encode(phone.encode()).decode().rstrip("=")


_MEMBER_CURSOR = re.compile(r"\+[0-9]{1,20}")


def _decode_member_cursor(cursor: str | None) -> str | None:
    if not cursor:
        return None
    try:
        phone = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (ValueError, binascii.Error):
        phone = ""
    if not _MEMBER_CURSOR.fullmatch(phone):  # a member's E.164 number; never a NUL
        raise InvalidRequest("cursor", "is not a cursor this API gave out")
    return phone


def _member(row: RowMapping) -> Member:
    variables: dict[str, Any] = json.loads(row["variables"]) if row["variables"] else {}
    return Member(row["phone"], variables, row["added_at"], row["updated_at"])


async def members_as_recipients(
    connection: AsyncConnection, tenant_id: str, list_id: str, limit: int
) -> list[Recipient]:
    """Every member of the list as a bulk recipient; `InvalidRequest` over `limit`."""
    found = await find_list(connection, tenant_id, list_id)
    if found.member_count == 0:
        raise InvalidRequest("listId", "the list has no members; import some first")
    if found.member_count > limit:
        raise InvalidRequest(
            "listId", f"the list has {found.member_count} members; a bulk takes at most {limit}"
        )
    rows = await ListRepository(connection).members(list_id, None, limit)
    return [(row["phone"], _member(row).variables) for row in rows]
