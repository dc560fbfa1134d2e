"""The development-only manual test send: `POST /api/notifications/sms/test`."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.security.utils import get_authorization_scheme_param

from smsrelay.api.deps import ContainerDep, JsonBody, client_ip
from smsrelay.api.schemas import ErrorOut, TestSmsRequest, TestSmsResponse
from smsrelay.services.errors import NotFound
from smsrelay.services.tenants import authenticate
from smsrelay.services.test_send import LOG_KEY, send_test_sms

router = APIRouter(prefix="/api/notifications", tags=["notifications"])


@router.post(
    "/sms/test",
    response_model=TestSmsResponse,
    dependencies=[JsonBody],
    responses={code: {"model": ErrorOut} for code in (400, 404, 415, 422, 429, 502)},
)
async def send_test(
    body: TestSmsRequest, request: Request, container: ContainerDep
) -> TestSmsResponse:
    """Send one SMS now (development only; 3 per 5 minutes per IP)."""
    if not container.settings.is_development:
        raise NotFound("not found")
    assert container.test_sms_limiter is not None
    await container.test_sms_limiter.check(LOG_KEY, client_ip(request))
    tenant_id = await _optional_tenant(request, container)
    result = await send_test_sms(
        container.db,
        container.provider,
        to=body.to,
        message=body.message,
        default_region=container.settings.default_region,
        tenant_id=tenant_id,
    )
    return TestSmsResponse(
        provider_message_id=result.provider_message_id,
        to=result.to,
        status=result.status,
        log_id=result.log_id,
    )


async def _optional_tenant(request: Request, container: ContainerDep) -> str | None:
    """A bearer key is optional here; when one is sent it must be valid."""
    scheme, key = get_authorization_scheme_param(request.headers.get("authorization"))
    if not key or scheme.lower() != "bearer":
        return None
    return (await authenticate(container.db, key, container.key_cache)).tenant_id
