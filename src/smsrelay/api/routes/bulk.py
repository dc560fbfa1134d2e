"""Routes for broadcasts: accept a bulk send, show its progress, cancel what is not yet sent."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from smsrelay.api.bulk_schemas import (
    BulkAcceptedOut,
    BulkOut,
    BulkSendRequest,
    RecipientIn,
    RejectionOut,
    dump,
)
from smsrelay.api.deps import (
    ContainerDep,
    IdempotencyKeyHeader,
    JsonBody,
    PrincipalDep,
    require_scope,
)
from smsrelay.api.routes.sms import ERRORS, ERRORS_WITH_CONFLICT
from smsrelay.services.bulk import BulkAccepted, NewBulk, submit_bulk
from smsrelay.services.bulk_progress import BulkView, cancel_bulk, get_bulk
from smsrelay.services.bulk_screen import Recipient
from smsrelay.services.idempotency import fingerprint

router = APIRouter(prefix="/api/sms/bulk", tags=["bulk"])


@router.post(
    "",
    status_code=202,
    response_model=BulkAcceptedOut,
    responses=ERRORS_WITH_CONFLICT,
    dependencies=[JsonBody, require_scope("send")],
)
async def send_bulk(
    body: BulkSendRequest,
    container: ContainerDep,
    principal: PrincipalDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> JSONResponse:
    """Accept up to 100,000 recipients (or a list) for one message; 202 once stored durably."""
    policy = await container.policy_for(principal.tenant_id)
    answer = await submit_bulk(
        container.db,
        policy,
        principal,
        _new_bulk(body),
        key=idempotency_key,
        request_hash=fingerprint(body.model_dump(mode="json")) if idempotency_key else "",
        render=_render,
    )
    if container.bulk_expander is not None and not answer.replayed:
        container.bulk_expander.wake()
    headers = {"Idempotent-Replayed": "true"} if answer.replayed else None
    return JSONResponse(answer.body, status_code=answer.status, headers=headers)


def _new_bulk(body: BulkSendRequest) -> NewBulk:
    recipients: list[Recipient] | None = None
    if body.recipients is not None:
        recipients = [
            (r.to, r.variables) if isinstance(r, RecipientIn) else (r, None)
            for r in body.recipients
        ]
    return NewBulk(
        message=body.message,
        recipients=recipients,
        list_id=body.list_id,
        variables=body.variables,
        category=body.category,
        sender_id=body.sender_id,
        scheduled_at=body.scheduled_at,
        time_zone=body.time_zone,
        tags=body.tags,
        custom_data=body.custom_data,
        template_key=body.template_key,
        validity_seconds=body.validity_seconds,
        smart_encoding=body.smart_encoding,
    )


def _render(accepted: BulkAccepted) -> dict[str, Any]:
    return dump(
        BulkAcceptedOut(
            bulk_id=accepted.bulk_id,
            status=accepted.status,
            accepted_count=accepted.accepted_count,
            rejected_count=len(accepted.rejected),
            duplicate_count=accepted.duplicate_count,
            rejected=[RejectionOut(**r.as_json()) for r in accepted.rejected],
            created_at=accepted.created_at,
            scheduled_at=accepted.scheduled_at,
        )
    )


@router.get(
    "/{bulk_id}",
    response_model=BulkOut,
    responses=ERRORS,
    dependencies=[require_scope("read")],
)
async def show_bulk(bulk_id: str, container: ContainerDep, principal: PrincipalDep) -> BulkOut:
    """Progress: messages by status, cost so far, and how many recipients are written out."""
    return bulk_out(await get_bulk(container.db, principal.tenant_id, bulk_id))


@router.post(
    "/{bulk_id}/cancel",
    response_model=BulkOut,
    responses=ERRORS_WITH_CONFLICT,
    dependencies=[require_scope("send")],
)
async def cancel(bulk_id: str, container: ContainerDep, principal: PrincipalDep) -> BulkOut:
    """Cancel what is not yet sent; a second cancel is harmless; 409 once nothing is left."""
    view = await cancel_bulk(container.db, principal.tenant_id, bulk_id, datetime.now(UTC))
    return bulk_out(view)


def bulk_out(view: BulkView) -> BulkOut:
    bulk = view.bulk
    return BulkOut(
        bulk_id=bulk["id"],
        status=bulk["status"],
        accepted_count=bulk["accepted_count"],
        rejected_count=bulk["rejected_count"],
        duplicate_count=bulk["duplicate_count"],
        expanded_count=bulk["expanded_count"],
        counts=view.counts,
        total_cost=str(view.total_cost),
        estimated_cost=str(view.estimated_cost),
        currency=view.currency,
        category=bulk["category"],
        list_id=bulk["list_id"],
        created_at=bulk["created_at"],
        scheduled_at=bulk["scheduled_at"],
        time_zone=bulk["time_zone"],
        canceled_at=bulk["canceled_at"],
        canceled_count=view.canceled_count,
    )
