"""Provider webhooks: validate the signature, hand the update to the service, answer fast."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request, Response

from smsrelay.api.deps import container_of
from smsrelay.api.direct import DirectRoute
from smsrelay.api.errors import error_response
from smsrelay.api.forms import every_value, form_fields, query_value
from smsrelay.bootstrap import Container
from smsrelay.logs import get_logger
from smsrelay.providers.base import ProviderError
from smsrelay.providers.twilio.signature import is_valid_signature
from smsrelay.providers.twilio.statuses import our_status
from smsrelay.services.delivery import MessageScope, StatusUpdate, submit_status_update

router = APIRouter(prefix="/api/webhooks", tags=["webhooks"])
log = get_logger("smsrelay.webhooks")
PROVIDER = "twilio"  # whose tenant configs hold the auth tokens these webhooks are signed with
# Callback outcomes logged at info; the routine ones (applied, ignored as late, duplicate: a few
# per message sent) only at debug, as each is in the message's history anyway.
NOTEWORTHY = frozenset({"unmatched", "foreign", "stale"})


def public_url(request: Request, base: str) -> str:
    """The URL Twilio signed: our public base + the path and query it called.

    Spelled from the ASGI scope as `request.url` spells them, without building and parsing a
    whole URL on every callback.
    """
    path = request.scope["path"].replace("?", "%3F").replace("#", "%23").replace("\\", "%5C")
    query = request.scope.get("query_string", b"").decode().partition("#")[0]
    return f"{base}{path}" + (f"?{query}" if query else "")


async def twilio_status(request: Request) -> Response:
    """Twilio's status callback. 403 when `X-Twilio-Signature` does not match."""
    container = container_of(request)
    fields = await form_fields(request)
    scope = await signing_scope(request, container, every_value(fields))
    if scope is None:
        log.warning("webhook.signature_rejected", path=request.url.path)
        return error_response(
            403, "invalid_signature", "X-Twilio-Signature does not match this request"
        )
    update = _status_update(request, dict(fields), scope)
    if update is None:
        return error_response(
            422, "invalid_request", "MessageSid and a known outbound MessageStatus are required"
        )
    result = await submit_status_update(container.status_updates, update)
    log_at = log.info if result in NOTEWORTHY else log.debug
    log_at(
        "webhook.status_received",
        outcome=result,
        status=update.provider_status,
        outbox_id=update.outbox_id,
    )
    return Response(status_code=200)


# The busiest route by far (several callbacks per message sent): it reads everything from the
# request itself, and FastAPI's handling of a route (solving its parameters, even none, and
# serialising its answer) was a fifth of its CPU.
router.add_api_route(
    "/twilio/status",
    twilio_status,
    methods=["POST"],
    status_code=200,
    response_class=Response,
    route_class_override=DirectRoute,
)


async def signing_scope(
    request: Request, container: Container, params: Mapping[str, Any]
) -> MessageScope | None:
    """Whose messages a Twilio webhook may touch: the platform's and/or the tenants' whose
    auth token (found by the form's AccountSid) signed it; None when no candidate signed it."""
    signature = request.headers.get("x-twilio-signature", "")
    url = public_url(request, container.settings.public_url)
    account = params.get("AccountSid")
    return await container.provider_configs.signing_scope(
        PROVIDER,
        account if isinstance(account, str) else (account or [None])[0],
        container.webhook_auth_tokens,
        lambda token: is_valid_signature(url, params, signature, token),
    )


def _status_update(
    request: Request, params: dict[str, str], scope: MessageScope
) -> StatusUpdate | None:
    sid = params.get("MessageSid") or params.get("SmsSid")
    raw_status = params.get("MessageStatus") or params.get("SmsStatus") or ""
    status = our_status(raw_status)
    if not sid or status is None:
        return None
    token = request.headers.get("i-twilio-idempotency-token")
    return StatusUpdate(
        provider_message_id=sid,
        status=status,
        provider_status=raw_status,
        dedupe_key=f"twilio:{token}" if token else f"twilio:{sid}:{raw_status}",
        received_at=datetime.now(UTC),
        outbox_id=query_value(request, "outboxId"),
        error=_error(params),
        scope=scope,
    )


def _error(params: dict[str, str]) -> ProviderError | None:
    code = params.get("ErrorCode")
    if not code:
        return None
    return ProviderError(
        message=params.get("ErrorMessage") or f"Twilio error {code}",
        code=int(code) if code.isdigit() else code,
        more_info=f"https://www.twilio.com/docs/errors/{code}",
    )
