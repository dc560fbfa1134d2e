"""Routes for a tenant's own balance (read-only) and alert settings."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query

from smsrelay.api.balance_schemas import AlertsIn, AlertsOut, BalanceOut, alerts_out, balance_out
from smsrelay.api.deps import ContainerDep, JsonBody, PrincipalDep, require_scope
from smsrelay.api.routes.sms import ERRORS, ERRORS_WITH_CONFLICT
from smsrelay.services import alerts, balances
from smsrelay.services.alerts import AlertNetwork

router = APIRouter(prefix="/api", tags=["balance"])


@router.get(
    "/balance", response_model=BalanceOut, responses=ERRORS, dependencies=[require_scope("read")]
)
async def get_balance(
    container: ContainerDep,
    principal: PrincipalDep,
    limit: Annotated[int, Query(ge=1, le=200, description="Ledger movements per page")] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> BalanceOut:
    """The balance, its currency, threshold and hard stop, and the newest ledger movements."""
    view = await balances.show(container.db, principal.tenant_id, limit=limit, cursor=cursor)
    return balance_out(view)


@router.get(
    "/alerts", response_model=AlertsOut, responses=ERRORS, dependencies=[require_scope("read")]
)
async def get_alerts(container: ContainerDep, principal: PrincipalDep) -> AlertsOut:
    """The tenant's alert settings (never the signing secret)."""
    return alerts_out(await alerts.read_alert_settings(container.db, principal.tenant_id))


@router.put(
    "/alerts",
    response_model=AlertsOut,
    responses=ERRORS_WITH_CONFLICT,
    dependencies=[JsonBody, require_scope("admin")],
)
async def put_alerts(body: AlertsIn, container: ContainerDep, principal: PrincipalDep) -> AlertsOut:
    """Replace the alert settings; a new webhook signing secret is in this answer only."""
    settings = container.settings
    saved = await alerts.save_alert_settings(
        container.db,
        principal.tenant_id,
        body.to_input(),
        datetime.now(UTC),
        network=container.alert_network or AlertNetwork(allow_http=settings.is_development),
        secret_keys=settings.secret_keys,
        email_enabled=settings.smtp_url is not None,
    )
    return alerts_out(saved)
