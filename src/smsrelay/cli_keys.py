"""The `smsrelay keys` commands: create, list and revoke a tenant's scoped API keys."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, TypeVar

import typer

from smsrelay.cli_database import with_database
from smsrelay.services.errors import InvalidRequest, NotFound
from smsrelay.services.tenants import (
    DEFAULT_SCOPES,
    SCOPES,
    KeyInfo,
    create_key,
    list_keys,
    parse_scopes,
    revoke_key,
)
from smsrelay.store.database import Database

keys_app = typer.Typer(help="Manage a tenant's API keys.", no_args_is_help=True)

T = TypeVar("T")
_DURATION = re.compile(r"(\d+)([mhdw])")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_expiry(text: str, now: datetime) -> datetime:
    """`30d`, `12h`, `90m`, `2w` from now, or an ISO 8601 date or time (UTC when no offset)."""
    duration = _DURATION.fullmatch(text.strip().lower())
    if duration:
        amount, unit = duration.groups()
        try:
            return now + timedelta(**{_UNITS[unit]: int(amount)})
        except OverflowError:
            raise typer.BadParameter(f"{text!r} is too far in the future") from None
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is not a duration (30d, 12h, 90m, 2w) or an ISO 8601 time"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _with_database(action: Callable[[Database], Awaitable[T]]) -> T:
    """Run `action` on the configured database; an unknown id or a wrong value exits 1."""
    return with_database(action, refused=(InvalidRequest, NotFound), refused_exit_code=1)


def key_json(info: KeyInfo) -> dict[str, Any]:
    """A key as the CLI prints it: never the secret."""
    return {
        "keyId": info.key_id,
        "tenantId": info.tenant_id,
        "name": info.name,
        "prefix": info.prefix,
        "scopes": list(info.scopes),
        "state": info.state,
        "createdAt": _iso(info.created_at),
        "expiresAt": _iso(info.expires_at),
        "lastUsedAt": _iso(info.last_used_at),
        "revokedAt": _iso(info.revoked_at),
    }


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


@keys_app.command("create")
def keys_create(
    tenant_id: Annotated[str, typer.Argument(help="The tenant that will own the key.")],
    scopes: Annotated[
        str, typer.Option(help=f"Comma-separated, from: {', '.join(SCOPES)}.")
    ] = ",".join(name for name in SCOPES if name in DEFAULT_SCOPES),
    expires: Annotated[
        str | None,
        typer.Option(help="When the key stops working: 30d, 12h, 90m, 2w or an ISO 8601 time."),
    ] = None,
    name: Annotated[str, typer.Option(help="What the key is for.")] = "default",
) -> None:
    """Create an API key and print it (shown this once only) as JSON."""
    try:
        wanted = parse_scopes(scopes.split(","))
    except InvalidRequest as exc:
        raise typer.BadParameter(exc.message, param_hint="--scopes") from None
    expires_at = parse_expiry(expires, datetime.now(UTC)) if expires else None

    async def action(db: Database) -> dict[str, Any]:
        created = await create_key(db, tenant_id, name=name, scopes=wanted, expires_at=expires_at)
        return {**key_json(created.info), "apiKey": created.api_key}

    typer.echo(json.dumps(_with_database(action)))


@keys_app.command("list")
def keys_list(
    tenant_id: Annotated[str, typer.Argument(help="The tenant whose keys to list.")],
) -> None:
    """List a tenant's keys as JSON lines: prefix, scopes, state; never the secrets."""

    async def action(db: Database) -> list[KeyInfo]:
        return await list_keys(db, tenant_id)

    for info in _with_database(action):
        typer.echo(json.dumps(key_json(info)))


@keys_app.command("revoke")
def keys_revoke(key_id: Annotated[str, typer.Argument(help="The key to revoke.")]) -> None:
    """Revoke a key: refused from then on (a running server may accept it for up to 2 s more)."""

    async def action(db: Database) -> KeyInfo:
        return await revoke_key(db, key_id)

    typer.echo(json.dumps(key_json(_with_database(action))))
