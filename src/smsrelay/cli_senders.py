"""The `smsrelay senders` commands: the throughput a tenant's senders are paced at."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

import typer

from smsrelay.cli_database import with_database
from smsrelay.config import load_settings
from smsrelay.domain.throughput import parse_overrides
from smsrelay.services import throughput
from smsrelay.services.errors import InvalidRequest, NotFound
from smsrelay.services.throughput import SenderRate
from smsrelay.store.database import Database

senders_app = typer.Typer(
    help="Sender throughput (segments per second) for pacing.", no_args_is_help=True
)

T = TypeVar("T")
TenantArg = Annotated[str, typer.Argument(help="The tenant whose sender it is.")]
SenderArg = Annotated[
    str, typer.Argument(help="E.164 number, short code, alphanumeric ID or MG… SID.")
]


def _with_database(action: Callable[[Database], Awaitable[T]]) -> T:
    """Run `action` on the configured database; an unknown id or a wrong value exits 1."""
    return with_database(action, refused=(InvalidRequest, NotFound), refused_exit_code=1)


def rate_json(rate: SenderRate) -> dict[str, Any]:
    fields = asdict(rate)
    updated = fields.pop("updated_at")
    return {
        "sender": fields["sender"],
        "kind": fields["kind"],
        "segmentsPerSecond": fields["segments_per_second"],
        "origin": fields["origin"],
        "source": fields["source"],
        "updatedAt": None if updated is None else updated.isoformat(),
    }


@senders_app.command("set-throughput")
def set_throughput(
    tenant_id: TenantArg,
    sender: SenderArg,
    segments_per_second: Annotated[int, typer.Argument(help="Segments per second, 1-10000.")],
    source: Annotated[str | None, typer.Option(help="Where the figure is from.")] = None,
) -> None:
    """Pace the tenant's messages from SENDER at this rate on any provider; prints it as JSON."""

    async def action(db: Database) -> SenderRate:
        now = datetime.now(UTC)
        return await throughput.set_sender_rate(
            db, tenant_id, sender, segments_per_second, source, now
        )

    typer.echo(json.dumps(rate_json(_with_database(action))))


@senders_app.command("throughput")
def show_throughput(tenant_id: TenantArg, sender: SenderArg) -> None:
    """The rate the tenant's messages from SENDER are paced at, and where it comes from."""

    async def action(db: Database) -> SenderRate:
        deployment = parse_overrides(load_settings().sender_throughput)  # already checked
        return await throughput.sender_rate(db, tenant_id, sender, deployment)

    typer.echo(json.dumps(rate_json(_with_database(action))))


@senders_app.command("clear-throughput")
def clear_throughput(tenant_id: TenantArg, sender: SenderArg) -> None:
    """Forget the tenant's rate for SENDER (the deployment's or the kind's applies again)."""

    async def action(db: Database) -> None:
        await throughput.remove_sender_rate(db, tenant_id, sender)

    _with_database(action)
    typer.echo(json.dumps({"sender": sender, "cleared": True}))


@senders_app.command("list")
def list_throughput(tenant_id: TenantArg) -> None:
    """The rates the tenant has set, as JSON lines."""

    async def action(db: Database) -> list[SenderRate]:
        return await throughput.list_sender_rates(db, tenant_id)

    for rate in _with_database(action):
        typer.echo(json.dumps(rate_json(rate)))
