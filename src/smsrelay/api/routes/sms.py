"""Routes for sending SMS and reading the outbox."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from smsrelay.api.deps import (
    IDEMPOTENCY_KEY,
    IDEMPOTENCY_KEY_DOC,
    ContainerDep,
    JsonBody,
    PrincipalDep,
    container_of,
    require_scope,
)
from smsrelay.api.direct import (
    DirectRoute,
    caller,
    documented,
    header_doc,
    parse_body,
    read_json,
)
from smsrelay.api.schemas import (
    ErrorOut,
    OutboxEntryOut,
    OutboxPageOut,
    ResendRequest,
    SendSmsRequest,
    entry_out,
)
from smsrelay.domain.messages import OutboxEntry
from smsrelay.domain.status import Status
from smsrelay.services.idempotency import Answer, fingerprint
from smsrelay.services.outbox_queries import get_entry, list_entries
from smsrelay.services.resend import resend_message
from smsrelay.services.submit import NewMessage, Submission, build_row, submit_once, utcnow
from smsrelay.store.outbox import OutboxFilter

router = APIRouter(prefix="/api/sms", tags=["sms"])
ERRORS: dict[int | str, dict[str, object]] = {
    code: {"model": ErrorOut} for code in (400, 401, 404, 415, 422)
}
ERRORS_WITH_CONFLICT: dict[int | str, dict[str, object]] = {**ERRORS, 409: {"model": ErrorOut}}
# A metered tenant with the hard stop on whose balance cannot pay (docs/balances-and-alerts.md).
PAID_ERRORS: dict[int | str, dict[str, object]] = {**ERRORS_WITH_CONFLICT, 402: {"model": ErrorOut}}


async def send_sms(request: Request) -> JSONResponse:
    """Queue one SMS in the outbox; the dispatcher sends it shortly after."""
    payload = await read_json(request)
    principal = await caller(request, "send")
    body = parse_body(SendSmsRequest, payload)
    container = container_of(request)
    idempotency_key = request.headers.get(IDEMPOTENCY_KEY)
    new = NewMessage(
        to=body.to,
        message=body.message,
        sender_id=body.sender_id,
        category=body.category,
        tags=body.tags,
        custom_data=body.custom_data,
        template_key=body.template_key,
        scheduled_at=body.scheduled_at,
        validity_seconds=body.validity_seconds,
        smart_encoding=body.smart_encoding,
        override_suppression=body.override_suppression,
    )
    policy = await container.policy_for(principal.tenant_id)
    if idempotency_key is None:
        row = build_row(policy, principal, new, utcnow())
        entry = await container.submissions.submit(Submission(row, new.override_suppression))
        answer = Answer(202, _render(entry), replayed=False)
    else:
        answer = await submit_once(
            container.db,
            policy,
            principal,
            new,
            key=idempotency_key,
            request_hash=fingerprint(body.model_dump(mode="json")),
            render=_render,
        )
    if container.dispatcher is not None and not answer.replayed:
        container.dispatcher.wake()
    headers = {"Idempotent-Replayed": "true"} if answer.replayed else None
    return JSONResponse(answer.body, status_code=answer.status, headers=headers)


# The busiest route: it reads its request itself (api/direct.py), with FastAPI's answers.
router.add_api_route(
    "/send",
    send_sms,
    methods=["POST"],
    status_code=202,
    response_model=OutboxEntryOut,
    responses=PAID_ERRORS,
    openapi_extra=documented(SendSmsRequest, header_doc(IDEMPOTENCY_KEY, IDEMPOTENCY_KEY_DOC)),
    route_class_override=DirectRoute,
)


def _render(entry: OutboxEntry) -> dict[str, Any]:
    return entry_out(entry, with_events=True).model_dump(mode="json", by_alias=True)


@router.get(
    "/outbox",
    response_model=OutboxPageOut,
    responses=ERRORS,
    dependencies=[require_scope("read")],
)
async def list_outbox(
    container: ContainerDep,
    principal: PrincipalDep,
    status: Status | None = None,
    tag: Annotated[str | None, Query(max_length=100)] = None,
    recipient: Annotated[str | None, Query(max_length=40)] = None,
    created_from: Annotated[datetime | None, Query(alias="createdFrom")] = None,
    created_to: Annotated[datetime | None, Query(alias="createdTo")] = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> OutboxPageOut:
    """Newest first; pass `nextCursor` back as `cursor` for the next page."""
    query = OutboxFilter(
        tenant_id=principal.tenant_id,
        status=status.value if status else None,
        tag=tag,
        recipient=recipient,
        created_from=created_from,
        created_to=created_to,
        limit=limit,
    )
    page = await list_entries(container.db, query, cursor)
    return OutboxPageOut(items=[entry_out(e) for e in page.items], next_cursor=page.next_cursor)


@router.post(
    "/outbox/resend",
    response_model=OutboxEntryOut,
    responses=PAID_ERRORS,
    dependencies=[JsonBody, require_scope("send")],
)
async def resend(
    body: ResendRequest, container: ContainerDep, principal: PrincipalDep
) -> OutboxEntryOut:
    """Queue a failed or undelivered message again (up to the resend cap; 409 beyond it)."""
    entry = await resend_message(
        container.db, principal.tenant_id, body.outbox_id, container.settings.resend_cap
    )
    if container.dispatcher is not None:
        container.dispatcher.wake()
    return entry_out(entry, with_events=True)


@router.get(
    "/outbox/{outbox_id}",
    response_model=OutboxEntryOut,
    responses=ERRORS,
    dependencies=[require_scope("read")],
)
async def get_outbox_entry(
    outbox_id: str, container: ContainerDep, principal: PrincipalDep
) -> OutboxEntryOut:
    """One outbox entry with its event history."""
    entry = await get_entry(container.db, principal.tenant_id, outbox_id)
    return entry_out(entry, with_events=True)
