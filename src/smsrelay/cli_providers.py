"""The `smsrelay providers` commands (a tenant's own accounts) and `smsrelay secrets rotate`.

Field options come from each provider's spec (`--account-sid`, `--auth-key`, ...). A secret left
off the command line is read from `SMSRELAY_PROVIDER_<FIELD>` (e.g. SMSRELAY_PROVIDER_AUTH_TOKEN)
or, on a terminal, from a hidden prompt, so it need never appear in the shell's history.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

import typer
from rich.progress import Progress

from smsrelay.cli_database import fail, with_database
from smsrelay.config import Settings, SettingsError, load_settings
from smsrelay.providers.registry import TENANT_CONFIGS
from smsrelay.providers.tenant_config import TenantConfigSpec
from smsrelay.services.errors import ServiceError
from smsrelay.services.provider_configs import ProviderConfig, ProviderConfigs, spec_for
from smsrelay.services.secrets import SecretDecryptError
from smsrelay.store.database import Database

providers_app = typer.Typer(help="A tenant's own provider accounts.", no_args_is_help=True)

T = TypeVar("T")
ENV_PREFIX = "SMSRELAY_PROVIDER_"
PROGRESS_FROM = 50  # configs: fewer rotate too fast for a progress bar to help
_OPTION = re.compile(r"--([a-z0-9-]+)(?:=(.*))?", re.DOTALL)


def _kebab(name: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"-\1", name).lower()


def _env_name(name: str) -> str:
    return ENV_PREFIX + _kebab(name).replace("-", "_").upper()


def _fields_help() -> str:
    lines = []
    for provider, spec in TENANT_CONFIGS.items():
        options = " ".join(
            f"--{_kebab(f.name)}" + ("" if f.required else "?") + (" (secret)" if f.secret else "")
            for f in spec.fields
        )
        lines.append(f"{provider}: {options}")
    return "\n\n".join(lines)


def _with_configs(action: Callable[[ProviderConfigs], Awaitable[T]]) -> T:
    """Run `action` with the configured database and keys; a refusal exits 1 with its message."""
    from smsrelay.bootstrap import build_provider_configs  # the composition root is slow to import

    settings = _settings()

    async def work(db: Database) -> T:
        return await action(build_provider_configs(settings, db))

    try:
        return with_database(work, refused=(ServiceError,), refused_exit_code=1)
    except SecretDecryptError as exc:
        raise fail(str(exc), 1) from None


def _settings() -> Settings:
    try:
        return load_settings()
    except SettingsError as exc:
        raise fail(str(exc)) from None


def config_json(config: ProviderConfig) -> dict[str, Any]:
    """A config as the CLI prints it: secrets as set (and their last 4) only."""
    shown: dict[str, Any] = {
        "configId": config.config_id,
        "tenantId": config.tenant_id,
        "provider": config.provider,
        "settings": config.settings,
        "secrets": {n: {"set": s.is_set, "last4": s.last4} for n, s in config.secrets.items()},
        "verified": config.verified_at is not None,
        "verifiedAt": None if config.verified_at is None else config.verified_at.isoformat(),
        "version": config.version,
    }
    if config.webhook_token is not None:
        shown["webhookToken"] = config.webhook_token
    return shown


@providers_app.command(
    "set",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    help="Save a tenant's account for PROVIDER (unverified until `providers verify`). "
    "Options by provider (? optional):\n\n" + _fields_help(),
)
def providers_set(
    ctx: typer.Context,
    tenant_id: Annotated[str, typer.Argument(help="The tenant the account belongs to.")],
    provider: Annotated[str, typer.Argument(help="twilio or msg91.")],
) -> None:
    try:
        spec = spec_for(provider)
    except ServiceError as exc:
        raise fail(exc.message) from None
    values = _parse_fields(spec, list(ctx.args))
    values |= {name: _secret(name) for name in spec.secret_fields if name not in values}
    now = datetime.now(UTC)
    saved = _with_configs(lambda configs: configs.save(tenant_id, provider, values, now))
    typer.echo(json.dumps(config_json(saved)))


def _parse_fields(spec: TenantConfigSpec, args: list[str]) -> dict[str, str]:
    """`--kebab-name value` (or `--kebab-name=value`) pairs for the spec's fields."""
    by_option = {_kebab(f.name): f.name for f in spec.fields}
    known = ", ".join(f"--{option}" for option in by_option)
    values: dict[str, str] = {}
    while args:
        match = _OPTION.fullmatch(args.pop(0))
        if match is None or match.group(1) not in by_option:
            raise fail(f"{spec.provider} takes {known}")
        value = match.group(2)
        if value is None:
            if not args:
                raise fail(f"--{match.group(1)} needs a value")
            value = args.pop(0)
        values[by_option[match.group(1)]] = value
    return values


def _secret(name: str) -> str:
    """A secret from its environment variable, else a hidden prompt on a terminal."""
    variable = _env_name(name)
    value = os.environ.get(variable)
    if value:
        return value
    if not sys.stdin.isatty():
        raise fail(f"{name} is required: pass --{_kebab(name)} or set {variable}")
    secret: str = typer.prompt(name, hide_input=True)
    return secret


@providers_app.command("list")
def providers_list(
    tenant_id: Annotated[str, typer.Argument(help="The tenant whose accounts to list.")],
) -> None:
    """List a tenant's accounts as JSON lines; never a secret's value."""
    for config in _with_configs(lambda configs: configs.list_for(tenant_id)):
        typer.echo(json.dumps(config_json(config)))


@providers_app.command("verify")
def providers_verify(
    tenant_id: Annotated[str, typer.Argument(help="The tenant the account belongs to.")],
    provider: Annotated[str, typer.Argument(help="twilio or msg91.")],
) -> None:
    """Check the account with the provider; once verified, the tenant's messages use it."""
    now = datetime.now(UTC)
    verified = _with_configs(lambda configs: configs.verify(tenant_id, provider, now))
    typer.echo(json.dumps(config_json(verified)))


@providers_app.command("delete")
def providers_delete(
    tenant_id: Annotated[str, typer.Argument(help="The tenant the account belongs to.")],
    provider: Annotated[str, typer.Argument(help="twilio or msg91.")],
) -> None:
    """Remove the account; the tenant's messages use the platform's again."""
    _with_configs(lambda configs: configs.delete(tenant_id, provider))
    typer.echo(json.dumps({"tenantId": tenant_id, "provider": provider, "deleted": True}))


def secrets_rotate() -> None:
    """Re-encrypt every stored secret with the first key of SMSRELAY_SECRET_KEYS.

    Afterwards the older keys can be removed from the variable.
    """
    with Progress(transient=True, disable=not sys.stderr.isatty()) as progress:
        task = progress.add_task("re-encrypting", total=None)

        def advance(done: int, total: int) -> None:
            if total >= PROGRESS_FROM:
                progress.update(task, completed=done, total=total)

        count = _with_configs(lambda configs: configs.rotate(advance))
    typer.echo(f"re-encrypted {count} stored secret(s) with the newest key")
