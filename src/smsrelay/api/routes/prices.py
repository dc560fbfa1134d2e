"""Routes for a tenant's own prices per segment, which submit and preview use over the table."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Path, Response

from smsrelay.api.deps import ContainerDep, JsonBody, PrincipalDep, require_scope
from smsrelay.api.price_schemas import PriceIn, PriceListOut, PriceOut, price_out
from smsrelay.api.routes.sms import ERRORS
from smsrelay.services import prices

router = APIRouter(prefix="/api/prices", tags=["prices"])
# Checked by the service, so an unknown provider is a 404 and a bad country names the field.
ProviderName = Annotated[str, Path(description="A provider of the price table, e.g. twilio")]
Country = Annotated[str, Path(description="ISO 3166-1 alpha-2, e.g. US")]


@router.get("", response_model=PriceListOut, responses=ERRORS, dependencies=[require_scope("read")])
async def list_prices(container: ContainerDep, principal: PrincipalDep) -> PriceListOut:
    """The tenant's price overrides; anything not listed is priced from the shipped table."""
    found = await prices.list_tenant_prices(container.db, principal.tenant_id)
    return PriceListOut(items=[price_out(p) for p in found])


@router.put(
    "/{provider}/{country}",
    response_model=PriceOut,
    responses=ERRORS,
    dependencies=[JsonBody, require_scope("admin")],
)
async def put_price(
    provider: ProviderName,
    country: Country,
    body: PriceIn,
    container: ContainerDep,
    principal: PrincipalDep,
) -> PriceOut:
    """Set the tenant's price per segment for one provider and destination country."""
    given = prices.PriceInput(provider, country, body.per_segment, body.currency, body.source)
    saved = await prices.set_tenant_price(
        container.db, principal.tenant_id, given, datetime.now(UTC)
    )
    container.policies.forget(principal.tenant_id)
    return price_out(saved)


@router.delete(
    "/{provider}/{country}",
    status_code=204,
    responses=ERRORS,
    dependencies=[require_scope("admin")],
)
async def delete_price(
    provider: ProviderName, country: Country, container: ContainerDep, principal: PrincipalDep
) -> Response:
    """Remove an override; the shipped price applies again."""
    await prices.delete_tenant_price(container.db, principal.tenant_id, provider, country)
    container.policies.forget(principal.tenant_id)
    return Response(status_code=204)
