"""The `smsrelay balance` commands: the operator credits a tenant and reads its balance."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from smsrelay.cli_database import fail, with_database
from smsrelay.config import SettingsError, load_settings
from smsrelay.services import balances
from smsrelay.services.errors import InvalidRequest, NotFound
from smsrelay.store.database import Database

balance_app = typer.Typer(help="A tenant's credit balance (operators only).", no_args_is_help=True)


def balance_json(view: balances.BalanceView) -> dict[str, Any]:
    """The balance as the CLI prints it (camelCase, like GET /api/balance)."""
    return {
        "tenantId": view.tenant_id,
        "metered": view.metered,
        "balance": view.balance,
        "currency": view.currency,
        "lowBalanceThreshold": view.low_balance_threshold,
        "hardStop": view.hard_stop,
        "movements": [_movement_json(m) for m in view.movements],
        "nextCursor": view.next_cursor,
    }


def _movement_json(movement: balances.Movement) -> dict[str, Any]:
    return {
        "id": movement.id,
        "kind": movement.kind,
        "amount": movement.amount,
        "currency": movement.currency,
        "outboxId": movement.outbox_id,
        "note": movement.note,
        "createdAt": movement.created_at.isoformat(),
    }


def _default_currency() -> str:
    try:
        return load_settings().default_currency
    except SettingsError as exc:
        raise fail(str(exc)) from None


@balance_app.command("credit")
def balance_credit(
    tenant_id: Annotated[str, typer.Argument(help="The tenant to credit.")],
    amount: Annotated[str, typer.Argument(help="A positive decimal, e.g. 25 or 10.50.")],
    note: Annotated[str | None, typer.Option(help="Why (kept in the ledger).")] = None,
    currency: Annotated[
        str | None,
        typer.Option(
            help="ISO 4217 code; the first credit sets the balance's currency "
            "(default SMSRELAY_DEFAULT_CURRENCY)."
        ),
    ] = None,
) -> None:
    """Credit a tenant (metering starts with the first credit); prints the balance as JSON."""
    default = _default_currency()

    async def action(db: Database) -> balances.BalanceView:
        return await balances.credit(
            db,
            tenant_id,
            amount,
            datetime.now(UTC),
            currency=currency,
            default_currency=default,
            note=note,
        )

    view = with_database(action, refused=(InvalidRequest, NotFound), refused_exit_code=1)
    typer.echo(json.dumps(balance_json(view)))


@balance_app.command("show")
def balance_show(
    tenant_id: Annotated[str, typer.Argument(help="The tenant whose balance to show.")],
    limit: Annotated[int, typer.Option(min=1, max=200, help="Ledger movements to list.")] = 20,
) -> None:
    """Print the tenant's balance and newest ledger movements as JSON."""

    async def action(db: Database) -> balances.BalanceView:
        return await balances.show(db, tenant_id, limit=limit)

    view = with_database(action, refused=(InvalidRequest, NotFound), refused_exit_code=1)
    typer.echo(json.dumps(balance_json(view)))
