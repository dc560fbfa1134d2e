"""Route for previewing an SMS before sending it."""

from __future__ import annotations

from fastapi import APIRouter

from smsrelay.api.deps import ContainerDep, JsonBody, PrincipalDep, require_scope
from smsrelay.api.preview_schemas import PreviewOut, PreviewRequest, consent_out, preview_out
from smsrelay.api.routes.sms import ERRORS
from smsrelay.services.preview import consent_decision, preview_message
from smsrelay.services.submit import NewMessage

router = APIRouter(prefix="/api/sms", tags=["sms"])


@router.post(
    "/preview",
    response_model=PreviewOut,
    responses=ERRORS,
    dependencies=[JsonBody, require_scope("send")],
)
async def preview_sms(
    body: PreviewRequest, container: ContainerDep, principal: PrincipalDep
) -> PreviewOut:
    """What sending this SMS would do — number, sender, encoding, segments, cost; writes nothing."""
    new = NewMessage(
        to=body.to,
        message=body.message,
        sender_id=body.sender_id,
        category=body.category,
        smart_encoding=body.smart_encoding,
        override_suppression=body.override_suppression,
    )
    policy = await container.policy_for(principal.tenant_id)
    preview = preview_message(policy, new)
    decision = await consent_decision(container.db, principal.tenant_id, preview.to, new)
    return preview_out(preview).model_copy(update={"consent": consent_out(decision)})
