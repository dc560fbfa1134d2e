"""Routes for recipient lists: create, read, delete, page members, import a CSV (streamed)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from smsrelay.api.bulk_schemas import (
    ImportOut,
    ListCreate,
    ListOut,
    ListPageOut,
    MemberOut,
    MemberPageOut,
    RowErrorOut,
)
from smsrelay.api.deps import (
    ContainerDep,
    JsonBody,
    PrincipalDep,
    require_scope,
)
from smsrelay.api.errors import STATUS_BY_ERROR
from smsrelay.api.routes.sms import ERRORS
from smsrelay.services import list_import, recipient_lists
from smsrelay.services.recipient_lists import RecipientList

router = APIRouter(prefix="/api/lists", tags=["lists"])
STATUS_BY_ERROR[list_import.NotCsv] = 415
WRITE = require_scope("send", "admin")
READ = require_scope("read")
CSV_BODY = {
    "requestBody": {
        "required": True,
        "content": {"text/csv": {"schema": {"type": "string"}}},
        "description": "A header row with a phone (or to) column; other columns are variables",
    }
}


def list_out(found: RecipientList) -> ListOut:
    return ListOut(
        list_id=found.list_id,
        name=found.name,
        member_count=found.member_count,
        created_at=found.created_at,
        updated_at=found.updated_at,
    )


@router.post(
    "", status_code=201, response_model=ListOut, responses=ERRORS, dependencies=[JsonBody, WRITE]
)
async def create_list(
    body: ListCreate, container: ContainerDep, principal: PrincipalDep
) -> ListOut:
    """Create an empty recipient list."""
    now = datetime.now(UTC)
    return list_out(
        await recipient_lists.create_list(container.db, principal.tenant_id, body.name, now)
    )


@router.get("", response_model=ListPageOut, responses=ERRORS, dependencies=[READ])
async def list_lists(
    container: ContainerDep,
    principal: PrincipalDep,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> ListPageOut:
    """The tenant's lists, newest first, with member counts."""
    found, next_cursor = await recipient_lists.list_lists(
        container.db, principal.tenant_id, cursor, limit
    )
    return ListPageOut(items=[list_out(item) for item in found], next_cursor=next_cursor)


@router.get("/{list_id}", response_model=ListOut, responses=ERRORS, dependencies=[READ])
async def get_list(list_id: str, container: ContainerDep, principal: PrincipalDep) -> ListOut:
    """One list with its member count."""
    return list_out(await recipient_lists.get_list(container.db, principal.tenant_id, list_id))


@router.delete("/{list_id}", status_code=204, responses=ERRORS, dependencies=[WRITE])
async def delete_list(list_id: str, container: ContainerDep, principal: PrincipalDep) -> Response:
    """Delete a list and its members (bulks already sent to it are not affected)."""
    await recipient_lists.delete_list(container.db, principal.tenant_id, list_id)
    return Response(status_code=204)


@router.get(
    "/{list_id}/members", response_model=MemberPageOut, responses=ERRORS, dependencies=[READ]
)
async def list_members(
    list_id: str,
    container: ContainerDep,
    principal: PrincipalDep,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> MemberPageOut:
    """Members in phone-number order; pass `nextCursor` back as `cursor`."""
    members, next_cursor = await recipient_lists.list_members(
        container.db, principal.tenant_id, list_id, cursor, limit
    )
    items = [
        MemberOut(
            phone=m.phone, variables=m.variables, added_at=m.added_at, updated_at=m.updated_at
        )
        for m in members
    ]
    return MemberPageOut(items=items, next_cursor=next_cursor)


@router.post(
    "/{list_id}/import",
    response_model=ImportOut,
    responses=ERRORS,
    dependencies=[WRITE],
    openapi_extra=CSV_BODY,
)
async def import_csv(
    list_id: str, request: Request, container: ContainerDep, principal: PrincipalDep
) -> ImportOut:
    """Import a CSV (streamed, up to 100,000 rows); refused rows are reported, the rest merged."""
    report = await list_import.import_members(
        container.db,
        principal.tenant_id,
        list_id,
        request.stream(),
        datetime.now(UTC),
        content_type=request.headers.get("content-type", ""),
    )
    return ImportOut(
        rows=report.rows,
        imported=report.imported,
        duplicates=report.duplicates,
        rejected_count=report.rejected,
        errors=[
            RowErrorOut(row=e.row, value=e.value, reason=e.reason, message=e.message)
            for e in report.errors
        ],
        member_count=report.member_count,
    )
