"""Routes for a tenant's own provider accounts (`admin` scope): save, list, show, verify, delete."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Body, Path, Response

from smsrelay.api.deps import ContainerDep, JsonBody, PrincipalDep, require_scope
from smsrelay.api.errors import STATUS_BY_ERROR
from smsrelay.api.provider_schemas import (
    CONFIG_FIELDS_HELP,
    ProviderConfigListOut,
    ProviderConfigOut,
    SavedProviderConfigOut,
    config_out,
    saved_out,
)
from smsrelay.api.schemas import ErrorOut
from smsrelay.services.provider_configs import CredentialsRejected, ProviderUnreachable

router = APIRouter(
    prefix="/api/providers", tags=["providers"], dependencies=[require_scope("admin")]
)
ERRORS: dict[int | str, dict[str, object]] = {
    code: {"model": ErrorOut} for code in (400, 401, 403, 404, 409, 415, 422, 424, 429)
}
STATUS_BY_ERROR[CredentialsRejected] = 422
STATUS_BY_ERROR[ProviderUnreachable] = 424  # the provider, not the caller, failed the check
ProviderName = Annotated[str, Path(description="A provider tenants may configure: twilio, msg91")]
ConfigBody = Annotated[dict[str, str | None], Body(description=CONFIG_FIELDS_HELP)]


@router.get("", response_model=ProviderConfigListOut, responses=ERRORS)
async def list_provider_configs(
    container: ContainerDep, principal: PrincipalDep
) -> ProviderConfigListOut:
    """The tenant's own provider accounts; providers without one use the platform's."""
    found = await container.provider_configs.list_for(principal.tenant_id)
    known = sorted(container.provider_configs.specs)
    return ProviderConfigListOut(items=[config_out(c) for c in found], providers=known)


@router.put(
    "/{provider}",
    response_model=SavedProviderConfigOut,
    responses=ERRORS,
    dependencies=[JsonBody],
)
async def put_provider_config(
    provider: ProviderName, body: ConfigBody, container: ContainerDep, principal: PrincipalDep
) -> SavedProviderConfigOut:
    """Create or replace the tenant's account; unverified (not used) until `verify` passes."""
    saved = await container.provider_configs.save(
        principal.tenant_id, provider, body, datetime.now(UTC)
    )
    return saved_out(saved, container.settings.public_url)


@router.get("/{provider}", response_model=ProviderConfigOut, responses=ERRORS)
async def get_provider_config(
    provider: ProviderName, container: ContainerDep, principal: PrincipalDep
) -> ProviderConfigOut:
    """The tenant's account for one provider, secrets shown as set (and their last 4)."""
    return config_out(await container.provider_configs.get(principal.tenant_id, provider))


@router.post("/{provider}/verify", response_model=ProviderConfigOut, responses=ERRORS)
async def verify_provider_config(
    provider: ProviderName, container: ContainerDep, principal: PrincipalDep
) -> ProviderConfigOut:
    """Check the credentials with the provider; from then on messages use this account."""
    verified = await container.provider_configs.verify(
        principal.tenant_id, provider, datetime.now(UTC)
    )
    return config_out(verified)


@router.delete("/{provider}", status_code=204, responses=ERRORS)
async def delete_provider_config(
    provider: ProviderName, container: ContainerDep, principal: PrincipalDep
) -> Response:
    """Remove the tenant's account; its messages use the platform's again."""
    await container.provider_configs.delete(principal.tenant_id, provider)
    return Response(status_code=204)
