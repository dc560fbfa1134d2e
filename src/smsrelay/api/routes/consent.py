"""Routes for consent: the ledger, suppressions, the inbound SMS webhook, the inbox, settings."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any
from xml.sax.saxutils import escape

from fastapi import APIRouter, Query, Request, Response

from smsrelay.api.consent_schemas import (
    ConsentHistoryOut,
    ConsentIn,
    ConsentRecordOut,
    ConsentSettingsIn,
    ConsentSettingsOut,
    InboxPageOut,
    SuppressionIn,
    SuppressionOut,
    SuppressionPageOut,
    history_out,
    inbound_out,
    record_out,
    settings_out,
    suppression_out,
)
from smsrelay.api.deps import ContainerDep, JsonBody, PrincipalDep, require_scope
from smsrelay.api.errors import error_response
from smsrelay.api.routes.webhooks import signing_scope
from smsrelay.api.schemas import ErrorOut
from smsrelay.bootstrap import Container
from smsrelay.logs import get_logger
from smsrelay.services import consent, inbound
from smsrelay.services.delivery import MessageScope

router = APIRouter(tags=["consent"])
READ = require_scope("read")
WRITE = require_scope("send")
log = get_logger("smsrelay.webhooks")
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut} for code in (400, 401, 404, 415, 422)
}
Limit = Annotated[int, Query(ge=1, le=200)]
Cursor = Annotated[str | None, Query(max_length=400)]
# Twilio answers a webhook with TwiML (https://www.twilio.com/docs/messaging/twiml).
TWIML_MEDIA_TYPE = "text/xml"


@router.post(
    "/api/consents",
    status_code=201,
    response_model=ConsentRecordOut,
    responses=ERRORS,
    dependencies=[JsonBody, WRITE],
)
async def create_consent(
    body: ConsentIn, container: ContainerDep, principal: PrincipalDep
) -> ConsentRecordOut:
    """Append an opt-in or opt-out with its evidence; an opt-out from everything also suppresses."""
    now = datetime.now(UTC)
    (record,) = await consent.record_consents(
        container.db, principal.tenant_id, principal.key_id, [body.to_input()], now
    )
    return record_out(record)


@router.get(
    "/api/consents", response_model=ConsentHistoryOut, responses=ERRORS, dependencies=[READ]
)
async def get_consents(
    phone: Annotated[str, Query(min_length=1, max_length=40)],
    container: ContainerDep,
    principal: PrincipalDep,
) -> ConsentHistoryOut:
    """A number's consent history (oldest first), its suppression and its marketing consent."""
    state = await consent.consent_state(container.db, principal.tenant_id, phone)
    return history_out(state)


@router.get(
    "/api/suppressions", response_model=SuppressionPageOut, responses=ERRORS, dependencies=[READ]
)
async def list_suppressions(
    container: ContainerDep,
    principal: PrincipalDep,
    phone: Annotated[str | None, Query(max_length=40)] = None,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> SuppressionPageOut:
    """Suppressed numbers, newest first (or just `phone`'s)."""
    rows, next_cursor = await consent.list_suppressions(
        container.db, principal.tenant_id, phone, cursor, limit
    )
    return SuppressionPageOut(items=[suppression_out(r) for r in rows], next_cursor=next_cursor)


@router.post(
    "/api/suppressions",
    status_code=201,
    response_model=SuppressionOut,
    responses=ERRORS,
    dependencies=[JsonBody, WRITE],
)
async def add_suppression(
    body: SuppressionIn, response: Response, container: ContainerDep, principal: PrincipalDep
) -> SuppressionOut:
    """Suppress a number (201); one already suppressed is answered 200, unchanged."""
    row, created = await consent.suppress(
        container.db,
        principal.tenant_id,
        body.phone,
        body.reason,
        principal.key_id,
        datetime.now(UTC),
        body.note,
    )
    if not created:
        response.status_code = 200
    return suppression_out(row)


@router.delete("/api/suppressions/{phone}", status_code=204, responses=ERRORS, dependencies=[WRITE])
async def remove_suppression(
    phone: str, container: ContainerDep, principal: PrincipalDep
) -> Response:
    """Lift a suppression (recorded in the ledger); 404 when the number is not suppressed."""
    await consent.lift_suppression(container.db, principal.tenant_id, phone, principal.key_id)
    return Response(status_code=204)


@router.get("/api/sms/inbox", response_model=InboxPageOut, responses=ERRORS, dependencies=[READ])
async def list_inbox(
    container: ContainerDep,
    principal: PrincipalDep,
    keyword: Annotated[str | None, Query(pattern="^(opt_out|opt_in|help|none)$")] = None,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> InboxPageOut:
    """Inbound messages this tenant owns, newest first; `keyword=none` for ordinary replies."""
    rows, next_cursor = await inbound.list_inbox(
        container.db, principal.tenant_id, keyword, cursor, limit
    )
    return InboxPageOut(items=[inbound_out(r) for r in rows], next_cursor=next_cursor)


@router.get(
    "/api/consent-settings",
    response_model=ConsentSettingsOut,
    responses=ERRORS,
    dependencies=[READ],
)
async def get_settings(container: ContainerDep, principal: PrincipalDep) -> ConsentSettingsOut:
    """Keyword replies and sending hours in force for this tenant."""
    return settings_out(await inbound.get_consent_settings(container.db, principal.tenant_id))


@router.put(
    "/api/consent-settings",
    response_model=ConsentSettingsOut,
    responses=ERRORS,
    dependencies=[JsonBody, WRITE],
)
async def put_settings(
    body: ConsentSettingsIn, container: ContainerDep, principal: PrincipalDep
) -> ConsentSettingsOut:
    """Change replies (null = default, "" = no reply) or the sending hours (both, HH:MM)."""
    changes = body.changes()
    settings = await inbound.update_consent_settings(container.db, principal.tenant_id, changes)
    return settings_out(settings)


@router.post("/api/webhooks/twilio/inbound", response_class=Response, tags=["webhooks"])
async def twilio_inbound(request: Request, container: ContainerDep) -> Response:
    """Twilio's incoming-message webhook: keywords act, everything is stored; answers TwiML."""
    signed = await signed_twilio_params(request, container)
    if signed is None:
        log.warning("webhook.signature_rejected", path=request.url.path)
        return error_response(
            403, "invalid_signature", "X-Twilio-Signature does not match this request"
        )
    params, scope = signed
    missing = [name for name in ("MessageSid", "From") if not params.get(name)]
    if missing:
        message = f"{missing[0]}: is required in Twilio's inbound webhook"
        return error_response(422, "invalid_request", message, {"field": missing[0]})
    drain = container.settings.provider_timeout_seconds + 2
    received = _inbound(params, None if scope.platform else scope.tenant_ids)
    outcome = await inbound.receive_inbound(container.db, received, drain_seconds=drain)
    return Response(content=twiml(outcome.reply), media_type=TWIML_MEDIA_TYPE)


async def signed_twilio_params(
    request: Request, container: Container
) -> tuple[dict[str, str], MessageScope] | None:
    """The form fields of a request Twilio signed for us and whose keys signed it, or None
    when the signature is wrong."""
    form = await request.form()
    every = {name: [str(v) for v in form.getlist(name)] for name in form}
    scope = await signing_scope(request, container, every)
    if scope is None:
        return None
    return {name: values[0] for name, values in every.items() if values}, scope


def _inbound(params: dict[str, str], tenant_ids: frozenset[str] | None) -> inbound.Inbound:
    kept = {k: v for k, v in params.items() if k not in ("Body", "From", "To")}
    return inbound.Inbound(
        sid=params["MessageSid"],
        from_phone=params["From"],
        to_phone=params.get("To"),
        body=params.get("Body", ""),
        opt_out_type=params.get("OptOutType") or None,
        params=kept,
        received_at=datetime.now(UTC),
        tenant_ids=tenant_ids,
    )


def twiml(reply: str | None) -> str:
    """A TwiML answer with one `<Message>`, or an empty `<Response/>` (nothing sent back)."""
    head = '<?xml version="1.0" encoding="UTF-8"?>'
    if not reply:
        return f"{head}<Response/>"
    return f"{head}<Response><Message>{escape(reply)}</Message></Response>"
