"""Running a CLI command's work on the configured database, its refusals as `error:` exits."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import typer

from smsrelay.config import SettingsError, load_settings
from smsrelay.services.errors import ServiceError
from smsrelay.store.database import Database

T = TypeVar("T")


def fail(message: str, exit_code: int = 2) -> typer.Exit:
    """Print `error: message` in red on stderr; raise what it returns to end the command."""
    typer.secho(f"error: {message}", fg="red", err=True)
    return typer.Exit(exit_code)


def with_database(
    work: Callable[[Database], Awaitable[T]],
    *,
    refused: tuple[type[ServiceError], ...] = (ServiceError,),
    refused_exit_code: int = 2,
) -> T:
    """Run `work` on the configured database (migrated first when it is SQLite).

    Bad settings exit 2; a `refused` service error exits `refused_exit_code` with its message.
    """
    try:
        settings = load_settings()
    except SettingsError as exc:
        raise fail(str(exc)) from None

    async def main() -> T:
        db = Database(settings.database_url)
        try:
            if db.is_sqlite:
                await db.migrate()
            return await work(db)
        finally:
            await db.dispose()

    try:
        return asyncio.run(main())
    except refused as exc:
        raise fail(exc.message, refused_exit_code) from None
