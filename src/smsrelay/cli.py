"""The `smsrelay` command: serve, worker, migrate, simulator, tenants."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import signal
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
import uvicorn

from smsrelay.cli_balance import balance_app
from smsrelay.cli_bulk import bulk_app
from smsrelay.cli_consent import consents_app
from smsrelay.cli_keys import keys_app
from smsrelay.cli_preview import preview
from smsrelay.cli_providers import providers_app, secrets_rotate
from smsrelay.cli_senders import senders_app
from smsrelay.config import Settings, SettingsError, load_settings
from smsrelay.logs import configure_logging
from smsrelay.providers.base import ProviderConfigError

app = typer.Typer(
    help="smsrelay: a self-hosted SMS service.", no_args_is_help=True, add_completion=False
)
tenants_app = typer.Typer(help="Manage tenants and their API keys.", no_args_is_help=True)
app.add_typer(tenants_app, name="tenants")
app.command()(preview)
app.add_typer(consents_app, name="consents")
app.add_typer(keys_app, name="keys")
app.add_typer(senders_app, name="senders")
app.add_typer(bulk_app, name="bulk")
app.add_typer(balance_app, name="balance")
secrets_app = typer.Typer(help="Keys for secrets stored encrypted.", no_args_is_help=True)
app.add_typer(secrets_app, name="secrets")
app.add_typer(providers_app, name="providers")
secrets_app.command("rotate")(secrets_rotate)

if TYPE_CHECKING:  # imported where used: the CLI starts without the service's modules
    from smsrelay.bootstrap import Container
    from smsrelay.dispatch.dispatcher import Dispatcher

T = TypeVar("T")
# Allocations between two passes over the youngest objects (Python's default is 700).
YOUNG_GC_THRESHOLD = 10_000


def _settings(**overrides: Any) -> Settings:
    try:
        return load_settings(**overrides)
    except SettingsError as exc:
        typer.secho(f"error: {exc}", fg="red", err=True)
        raise typer.Exit(2) from None


def _run(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    try:
        return asyncio.run(main())
    except ProviderConfigError as exc:
        typer.secho(f"error: {exc} (set {', '.join(exc.missing)})", fg="red", err=True)
        raise typer.Exit(2) from None


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    no_dispatcher: Annotated[
        bool, typer.Option("--no-dispatcher", help="Do not send from this process.")
    ] = False,
) -> None:
    """Run the API, the dashboard and (unless --no-dispatcher) an in-process dispatcher."""
    from smsrelay.api.app import create_app
    from smsrelay.bootstrap import bootstrap

    configure_logging()
    overrides: dict[str, Any] = {}
    if "SMSRELAY_PUBLIC_URL" not in os.environ:
        shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host  # noqa: S104
        overrides["public_url"] = f"http://{shown}:{port}"
    settings = _settings(**overrides)
    container = bootstrap(settings)
    _run(lambda: _check_provider(container))
    typer.echo(
        f"smsrelay {settings.env} on http://{host}:{port} — API docs at "
        f"http://{host}:{port}/api-docs; provider {container.provider_name}; "
        "create an API key with: smsrelay tenants create NAME",
        err=True,
    )
    api = create_app(container, dispatch=not no_dispatcher)
    _tune_garbage_collector()
    # No proxy headers: behind a proxy, X-Forwarded-For from a client would defeat per-IP limits.
    uvicorn.run(
        api, host=host, port=port, log_level="warning", access_log=False, proxy_headers=False
    )


def _tune_garbage_collector() -> None:
    """Keep what start-up built (modules, the app, the container: some 200,000 objects that live
    as long as the process) out of the collector's passes, and collect the youngest objects
    every 10,000 allocations instead of every 700.

    A request awaiting its group commit (a status callback, a send) outlives a young-generation
    pass when those come every 700 allocations, so it was moved to the older generations, whose
    passes then came every few thousand requests and walked every start-up object: on the status
    webhook, about 120 µs of CPU per request in-process. Now almost every request's objects are
    freed before a pass sees them.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_GC_THRESHOLD, *gc.get_threshold()[1:])


async def _check_provider(container: Any) -> None:
    """Fail at start, naming the variables, when the provider cannot be configured."""
    from smsrelay.bootstrap import start_provider

    setup = await start_provider(container.settings, container.provider_name)
    await setup.close()


async def _start_worker(container: Container) -> Dispatcher:
    """Start the container for a worker; its dispatcher, to run.

    The collector is tuned once start-up is done, as for `serve`: a worker's messages await
    their batches (claims, acceptances) long enough to outlive young passes, and the full
    passes that followed walked every start-up object (~75 µs of CPU per message sent).
    """
    await container.start(dispatch=False, alerts=True)  # the dispatcher runs in `worker`
    assert container.dispatcher is not None
    container.run_bulk_expander()  # accepted bulks are written out by any live process
    _tune_garbage_collector()
    return container.dispatcher


@app.command()
def worker() -> None:
    """Run a dispatcher only (any number of these may share one database)."""
    from smsrelay.bootstrap import bootstrap

    configure_logging()
    container = bootstrap(_settings())

    async def main() -> None:
        dispatcher = await _start_worker(container)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, lambda: asyncio.ensure_future(dispatcher.stop()))
        try:
            await dispatcher.run()  # returns once stopped and every send in flight is recorded
        finally:
            await container.stop()

    _run(main)


@app.command()
def migrate() -> None:
    """Apply database migrations."""
    from smsrelay.store.database import Database

    settings = _settings()

    async def main() -> None:
        db = Database(settings.database_url)
        try:
            await db.migrate()
        finally:
            await db.dispose()

    _run(main)
    typer.echo("database is up to date", err=True)


@app.command()
def simulator(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8088,
) -> None:
    """Run the Twilio-compatible simulator alone."""
    from smsrelay.providers.simulator.config import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN
    from smsrelay.providers.simulator.server import run_simulator

    configure_logging()
    run_simulator(host, port, DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN)


@tenants_app.command("create")
def tenants_create(name: Annotated[str, typer.Argument(help="The tenant's name.")]) -> None:
    """Create a tenant and print its first API key (shown this once only) as JSON."""
    from smsrelay.services.tenants import create_tenant
    from smsrelay.store.database import Database

    settings = _settings()

    async def main() -> dict[str, str]:
        db = Database(settings.database_url)
        try:
            if db.is_sqlite:
                await db.migrate()
            created = await create_tenant(db, name)
        finally:
            await db.dispose()
        return {
            "tenantId": created.tenant_id,
            "name": created.name,
            "apiKey": created.api_key,
            "keyId": created.key_id,
        }

    if not name.strip():
        typer.secho("error: NAME must not be empty", fg="red", err=True)
        raise typer.Exit(2)
    typer.echo(json.dumps(_run(main)))


@tenants_app.command("list")
def tenants_list() -> None:
    """List tenants as JSON lines."""
    from smsrelay.store.database import Database
    from smsrelay.store.tenants import TenantRepository

    settings = _settings()

    async def main() -> list[dict[str, str]]:
        db = Database(settings.database_url)
        try:
            async with db.transaction() as connection:
                rows = await TenantRepository(connection).list_tenants()
        finally:
            await db.dispose()
        return [
            {"tenantId": r["id"], "name": r["name"], "createdAt": r["created_at"].isoformat()}
            for r in rows
        ]

    for row in _run(main):
        typer.echo(json.dumps(row))


@secrets_app.command("generate-key")
def secrets_generate_key() -> None:
    """Print a new Fernet key for SMSRELAY_SECRET_KEYS (put it first to encrypt with it)."""
    from smsrelay.services.secrets import generate_key

    typer.echo(generate_key())


def main() -> None:
    app(prog_name="smsrelay")


if __name__ == "__main__":
    main()
