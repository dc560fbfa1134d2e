"""The `smsrelay preview` command: a table of what sending one SMS would do, offline."""

from __future__ import annotations

import unicodedata
from enum import StrEnum
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from smsrelay.config import Settings, SettingsError, load_settings
from smsrelay.services.errors import InvalidRequest
from smsrelay.services.preview import EncodingOption, Preview, preview_message
from smsrelay.services.submit import NewMessage


class Category(StrEnum):
    transactional = "transactional"
    marketing = "marketing"


def preview(
    message: Annotated[str, typer.Argument(help="The SMS text.")],
    to: Annotated[str, typer.Option("--to", help="Recipient, E.164 (or national with a region).")],
    sender_id: Annotated[
        str | None,
        typer.Option("--sender-id", help="Number, short code, alphanumeric ID or MG… SID."),
    ] = None,
    category: Annotated[Category, typer.Option(help="Message category.")] = Category.transactional,
    smart_encoding: Annotated[
        bool, typer.Option("--smart-encoding/--no-smart-encoding", help="Use Smart Encoding.")
    ] = False,
) -> None:
    """Show what sending MESSAGE to --to would do: number, sender, encoding, segments, cost."""
    from smsrelay.bootstrap import submit_policy  # the composition root is slow to import

    policy = submit_policy(_settings())
    new = NewMessage(
        to=to,
        message=message,
        sender_id=sender_id,
        category=category.value,
        smart_encoding=smart_encoding,
    )
    try:
        result = preview_message(policy, new)
    except InvalidRequest as exc:
        typer.secho(f"error: {exc.message}", fg="red", err=True)
        raise typer.Exit(1) from None
    console = Console()
    console.print(summary_table(result))
    console.print(encoding_table(result))


def summary_table(result: Preview) -> Table:
    table = Table(title="SMS preview", show_header=False)
    table.add_column("", style="bold")
    table.add_column("")
    for label, value in _summary_rows(result):
        table.add_row(label, value)
    return table


def encoding_table(result: Preview) -> Table:
    table = Table(title="Cost with and without Smart Encoding")
    for column in ("", "encoding", "segments", "non-GSM characters", "cost per segment", "total"):
        table.add_column(column)
    for label, option in (
        ("without", result.without_smart_encoding),
        ("with", result.with_smart_encoding),
    ):
        chosen = " (chosen)" if option is result.chosen else ""
        table.add_row(f"{label}{chosen}", *_option_cells(option))
    return table


def _summary_rows(result: Preview) -> list[tuple[str, str]]:
    sender = result.sender
    chosen = result.chosen
    rows = [
        ("to", result.to),
        ("country", f"{result.country or '?'} (+{result.country_code}), {result.number_type}"),
        ("provider", result.provider),
        ("sender", _sender_text(result)),
        ("sender rule", ", ".join(sorted(sender.rule.allowed))),
        ("registration", sender.rule.registration),
        ("category", result.category),
        ("encoding", chosen.encoding),
        ("non-GSM characters", _characters(chosen.non_gsm_characters)),
        ("characters", str(chosen.characters)),
        ("segments", str(chosen.segments)),
        ("cost", f"{chosen.total_cost} {chosen.currency} ({chosen.cost_per_unit} per segment)"),
        ("price source", result.price_source),
    ]
    rows.extend(("note", note) for note in result.notes)
    return rows


def _sender_text(result: Preview) -> str:
    choice = result.sender
    if choice.sender is None:
        return "provider default"
    return f"{choice.sender.value} ({choice.sender.kind}, {choice.source.replace('_', ' ')})"


def _option_cells(option: EncodingOption) -> list[str]:
    return [
        option.encoding,
        str(option.segments),
        _characters(option.non_gsm_characters),
        f"{option.cost_per_unit} {option.currency}",
        f"{option.total_cost} {option.currency}",
    ]


def _characters(characters: tuple[str, ...]) -> str:
    """Each character with its code points, so invisible ones (NBSP) can be seen."""
    if not characters:
        return "none"
    return ", ".join(f"{c} ({_code_points(c)})" for c in characters)


def _code_points(cluster: str) -> str:
    return " ".join(f"U+{ord(c):04X} {unicodedata.name(c, '')}".strip() for c in cluster)


def _settings() -> Settings:
    try:
        return load_settings()
    except SettingsError as exc:
        typer.secho(f"error: {exc}", fg="red", err=True)
        raise typer.Exit(2) from None
