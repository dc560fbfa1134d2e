"""MSG91's delivery-report webhook: check the URL token, apply each report, answer 200 fast.

MSG91 does not sign its reports, so the URL set in MSG91's panel carries a secret token:
`/api/webhooks/msg91/{token}`. The deployment's (`SMSRELAY_MSG91_WEBHOOK_TOKEN`) reports on
messages sent with the platform's MSG91 account; a tenant's (made when it saves its MSG91
config, stored as a hash) only on that tenant's messages. A wrong token, or the deployment's
without MSG91, answers exactly like an unknown URL (404), so the token cannot be probed.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request, Response

from smsrelay.api.deps import ContainerDep
from smsrelay.api.errors import error_response
from smsrelay.api.schemas import ErrorOut
from smsrelay.bootstrap import Container
from smsrelay.logs import get_logger
from smsrelay.providers.msg91 import DeliveryReportError, ParsedReport, parse_delivery_report
from smsrelay.services.delivery import MessageScope, StatusUpdate, submit_status_update

router = APIRouter(prefix="/api/webhooks", tags=["webhooks"])
log = get_logger("smsrelay.webhooks")
PROVIDER = "msg91"
MAX_ID_LENGTH = 64  # the outbox's provider_message_id column
MAX_STATUS_LENGTH = 16  # MSG91's report statuses are 1-2 digit codes
ERRORS: dict[int | str, dict[str, Any]] = {code: {"model": ErrorOut} for code in (400, 404, 422)}


@router.post("/msg91/{token}", status_code=200, response_class=Response, responses=ERRORS)
async def msg91_report(token: str, request: Request, container: ContainerDep) -> Response:
    """MSG91's delivery report (v2 form `data` or v3 JSON). 404 unless `token` is ours."""
    scope = await container.provider_configs.webhook_token_scope(
        PROVIDER, token, _platform_token(container)
    )
    if scope is None:
        return error_response(404, "not_found", "Not Found")
    try:
        reports = _checked(parse_delivery_report(await _payload(request)))
    except DeliveryReportError as exc:
        return error_response(422, "invalid_request", str(exc))
    except ValueError:
        return error_response(400, "malformed_json", "the body is not an MSG91 report in JSON")
    now = datetime.now(UTC)
    updates = [_status_update(report, now, scope) for report in reports]
    # Queued together, in the report's order: applied in one transaction (or a few).
    outcomes = await asyncio.gather(
        *(submit_status_update(container.status_updates, u) for u in updates if u is not None)
    )
    log.info("webhook.msg91_report_received", reports=len(reports), outcomes=outcomes)
    return Response(status_code=200)


def _platform_token(container: Container) -> str | None:
    """The deployment's URL token; None when the platform does not use MSG91 or has none."""
    expected = container.settings.msg91_webhook_token
    if expected is None or PROVIDER not in container.providers:
        return None
    return expected.get_secret_value()


async def _payload(request: Request) -> dict[str, Any] | list[Any]:
    """The body as JSON, or as the form MSG91's v2 reports use (`data` holding the JSON)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.form()
        return {name: str(value) for name, value in form.items()}
    payload = json.loads(await request.body())
    if not isinstance(payload, dict | list):
        raise DeliveryReportError("expected an MSG91 report object or a list of them")
    return payload


def _checked(reports: list[ParsedReport]) -> list[ParsedReport]:
    for report in reports:
        if len(report.request_id) > MAX_ID_LENGTH or len(report.raw_status) > MAX_STATUS_LENGTH:
            raise DeliveryReportError("a report's requestId or status is too long")
    return reports


def _status_update(report: ParsedReport, now: datetime, scope: MessageScope) -> StatusUpdate | None:
    """The update a report makes; None for a status code we do not know (nothing moves)."""
    if report.status is None:
        return None
    return StatusUpdate(
        provider_message_id=report.request_id,
        status=report.status,
        provider_status=report.raw_status,
        dedupe_key=f"msg91:{report.request_id}:{report.raw_status}",
        received_at=now,
        error=report.error,
        scope=scope,
    )
