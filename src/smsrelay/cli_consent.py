"""The `smsrelay consents` commands: export ledger evidence as CSV, import consents from CSV."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Annotated, Any

import typer

from smsrelay.cli_database import fail, with_database
from smsrelay.services.consent import ConsentInput, check_consent, export_consents, record_consents
from smsrelay.services.errors import ServiceError
from smsrelay.services.inbound import set_default_inbound_tenant

consents_app = typer.Typer(
    help="Consent evidence: export the ledger as CSV, import consents from CSV.",
    no_args_is_help=True,
)
# Import columns: phone, status, source and consent_text are required; method defaults to import.
IMPORT_COLUMNS = (
    "phone",
    "status",
    "category",
    "source",
    "method",
    "consent_text",
    "ip",
    "user_agent",
    "occurred_at",
)
# Export columns, in order: everything a dispute needs about one record. They hold all the
# import columns, so an export can be imported elsewhere.
EXPORT_COLUMNS = (
    "consent_id",
    "tenant_id",
    *IMPORT_COLUMNS,
    "recorded_at",
    "recorded_by",
    "evidence",
)
Tenant = Annotated[str, typer.Option("--tenant", help="The tenant id (smsrelay tenants list).")]


def _moment(raw: str | None, name: str) -> datetime | None:
    if not raw:
        return None
    if len(raw) == 10:  # a plain date: from midnight UTC
        raw += "T00:00:00+00:00"
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise fail(f"{name} must be ISO 8601, e.g. 2026-01-01T00:00:00Z") from None
    if moment.tzinfo is None:
        raise fail(f"{name} needs a UTC offset, e.g. 2026-01-01T00:00:00Z")
    return moment


@consents_app.command("export")
def export(
    tenant: Tenant,
    phone: Annotated[str | None, typer.Option(help="One number's whole history.")] = None,
    since: Annotated[str | None, typer.Option(help="Everything recorded since (ISO 8601).")] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File (default stdout).")
    ] = None,
) -> None:
    """Write consent records as CSV evidence, oldest first."""
    if not phone and not since:
        raise fail("give --phone or --since (or both)")
    moment = _moment(since, "--since")
    rows = with_database(lambda db: export_consents(db, tenant, phone, moment))
    if output is None:
        _write_csv(sys.stdout, rows)
    else:
        with output.open("w", newline="", encoding="utf-8") as handle:
            _write_csv(handle, rows)
    typer.echo(f"{len(rows)} records exported", err=True)


def _write_csv(handle: IO[str], rows: Iterable[Any]) -> None:
    writer = csv.writer(handle)
    writer.writerow(EXPORT_COLUMNS)
    for row in rows:
        writer.writerow([_cell(row, column) for column in EXPORT_COLUMNS])


def _cell(row: Any, column: str) -> str:
    value = row["id" if column == "consent_id" else column]
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    return str(value)


@consents_app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(help="CSV with a header row.", exists=True)],
    tenant: Tenant,
) -> None:
    """Append every row of FILE to the ledger, or none of them if any row is wrong."""
    with file.open(newline="", encoding="utf-8-sig") as handle:
        entries = _entries(csv.DictReader(handle))
    now = datetime.now(UTC)
    problems = _problems(entries, now)
    if problems:
        raise fail("nothing imported:\n" + "\n".join(problems))
    records = with_database(lambda db: record_consents(db, tenant, "cli:import", entries, now))
    typer.echo(f"{len(records)} consent records imported", err=True)


def _entries(reader: csv.DictReader[str]) -> list[ConsentInput]:
    missing = {"phone", "status", "source", "consent_text"} - set(reader.fieldnames or ())
    if missing:
        raise fail(f"the header lacks {', '.join(sorted(missing))}; columns: {IMPORT_COLUMNS}")
    return [_entry(row) for row in reader]


def _entry(row: dict[str, str]) -> ConsentInput:
    cell = {name: (row.get(name) or "").strip() or None for name in IMPORT_COLUMNS}
    occurred = cell["occurred_at"]
    return ConsentInput(
        phone=cell["phone"] or "",
        status=cell["status"] or "",
        source=cell["source"] or "",
        method=cell["method"] or "import",
        consent_text=row.get("consent_text") or "",
        category=cell["category"],
        ip=cell["ip"],
        user_agent=cell["user_agent"],
        occurred_at=None if occurred is None else _occurred(occurred),
    )


def _occurred(raw: str) -> datetime:
    try:
        return datetime.fromisoformat(raw)
    except ValueError:
        return datetime.min  # naive: reported as a bad occurred_at by the check


def _problems(entries: Sequence[ConsentInput], now: datetime) -> list[str]:
    problems = []
    for line, entry in enumerate(entries, start=2):  # line 1 is the header
        try:
            check_consent(entry, now)
        except ServiceError as exc:
            problems.append(f"line {line}: {exc.message}")
    return problems


@consents_app.command("default-tenant")
def default_tenant(
    tenant_id: Annotated[str, typer.Argument(help="Owns inbound SMS no tenant has texted.")],
) -> None:
    """Make a tenant the owner of inbound messages from numbers no tenant has texted."""
    with_database(lambda db: set_default_inbound_tenant(db, tenant_id))
    typer.echo(f"inbound default tenant: {tenant_id}", err=True)
