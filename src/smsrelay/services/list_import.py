"""Streamed CSV import into a recipient list: rows are read, checked and merged in batches.

The body is never held whole: bytes are decoded incrementally, cut into complete CSV records
(a newline inside a quoted field does not end one), and every `BATCH` members are merged in a
transaction of their own. The header names a `phone` (or `to`) column; the other columns become
the member's variables. A number already on the list, or twice in the file, is merged (the last
row's variables win). Each refused row is reported with its row number (the header is row 1),
its value masked and a reason; the first `SHOWN_ERRORS` are listed, all are counted.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from smsrelay.domain.phone_batch import NumberChecker
from smsrelay.logs import mask_phone
from smsrelay.services.errors import InvalidRequest, NotFound, ServiceError
from smsrelay.services.recipient_lists import find_list
from smsrelay.store.database import Database
from smsrelay.store.lists import ListRepository

BATCH: Final = 1000
MAX_ROWS: Final = 100_000
MAX_BYTES: Final = 64 * 1024 * 1024
MAX_COLUMNS: Final = 50
MAX_VALUE: Final = 1000
SHOWN_ERRORS: Final = 100
PHONE_COLUMNS: Final = ("phone", "to")


@dataclass(frozen=True, slots=True)
class RowError:
    row: int
    value: str
    reason: str
    message: str


@dataclass
class ImportReport:
    rows: int = 0
    imported: int = 0
    duplicates: int = 0
    rejected: int = 0
    member_count: int = 0
    errors: list[RowError] = field(default_factory=list)

    def refuse(self, row: int, value: str, reason: str, message: str) -> None:
        self.rejected += 1
        if len(self.errors) < SHOWN_ERRORS:
            self.errors.append(RowError(row, mask_phone(value) if value else "", reason, message))


@dataclass(frozen=True, slots=True)
class _Header:
    names: list[str]
    phone: int

    @classmethod
    def parse(cls, fields: list[str]) -> _Header:
        names = [name.strip() for name in fields]
        lowered = [name.lower() for name in names]
        phone = next((lowered.index(c) for c in PHONE_COLUMNS if c in lowered), None)
        if phone is None:
            raise InvalidRequest(
                "body",
                "the header row has no phone column; name one column 'phone' (or 'to')",
                {"header": names[:MAX_COLUMNS]},
            )
        if len(names) > MAX_COLUMNS or "" in names or len(set(lowered)) != len(names):
            raise InvalidRequest(
                "body",
                f"the header row needs 1 to {MAX_COLUMNS} distinct, non-empty column names",
                {"header": names[:MAX_COLUMNS]},
            )
        return cls(names, phone)


_QUOTE_OR_NEWLINE: Final = re.compile(r'["\n]')


class _RecordCutter:
    """Cuts decoded text into complete CSV records (a newline inside quotes does not end one).

    Each character is scanned once and the incomplete tail is kept as pieces, so a record
    that never ends (a stray quote) costs linear time, not a rescan of the tail per chunk.
    """

    def __init__(self) -> None:
        self.pending: list[str] = []
        self.inside = False

    def feed(self, text: str) -> str:
        """Add `text`; the complete records it finishes ("" for none)."""
        end = 0
        for match in _QUOTE_OR_NEWLINE.finditer(text):
            if match.group() == '"':
                self.inside = not self.inside
            elif not self.inside:
                end = match.end()
        if not end:
            self.pending.append(text)
            return ""
        complete = "".join([*self.pending, text[:end]])
        self.pending = [text[end:]]
        return complete

    def rest(self) -> str:
        return "".join(self.pending)


async def _csv_rows(chunks: AsyncIterator[bytes]) -> AsyncIterator[list[str]]:
    """CSV records from a byte stream (UTF-8, an optional BOM), one complete record at a time."""
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    cutter, size = _RecordCutter(), 0
    async for chunk in chunks:
        size += len(chunk)
        if size > MAX_BYTES:
            raise InvalidRequest(
                "body", f"is over {MAX_BYTES} bytes; split the file (rows before were kept)"
            )
        complete = cutter.feed(_decode(decoder, chunk, final=False))
        if complete:
            for fields in _records(complete):
                yield fields
    rest = cutter.rest() + _decode(decoder, b"", final=True)
    if rest.strip():
        for fields in _records(rest):
            yield fields


def _records(text: str) -> list[list[str]]:
    """The CSV records of `text`; `InvalidRequest` for one the csv module cannot read."""
    try:
        return list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as exc:  # e.g. a field over csv.field_size_limit() (128 KiB)
        raise InvalidRequest(
            "body",
            f"is not CSV this import can read ({exc}); fields take at most {MAX_VALUE} "
            "characters (rows before the fault were kept)",
        ) from None


def _decode(decoder: codecs.IncrementalDecoder, chunk: bytes, *, final: bool) -> str:
    try:
        text: str = decoder.decode(chunk, final)
    except UnicodeDecodeError:
        raise InvalidRequest(
            "body", "is not UTF-8 text; save the CSV as UTF-8 (rows before the fault were kept)"
        ) from None
    return text


def _member_of(
    header: _Header, fields: list[str], checker: NumberChecker, number: int, report: ImportReport
) -> dict[str, Any] | None:
    """The member a data row describes, or None after recording why it was refused."""
    value = fields[header.phone] if header.phone < len(fields) else ""
    if len(fields) != len(header.names):
        count = len(fields)
        report.refuse(
            number,
            value,
            "wrong_columns",
            f"has {count} fields; the header has {len(header.names)}",
        )
        return None
    if any("\x00" in item or len(item) > MAX_VALUE for item in fields):
        report.refuse(
            number,
            value,
            "bad_value",
            f"a field holds a NUL character or is over {MAX_VALUE} characters",
        )
        return None
    check = checker.check(value)
    if check.e164 is None:
        report.refuse(number, value, check.code or "invalid_number", check.reason or "")
        return None
    variables = {
        n: v for i, (n, v) in enumerate(zip(header.names, fields, strict=True)) if i != header.phone
    }
    return {
        "phone": check.e164,
        "region": check.region,
        "variables": json.dumps(variables, ensure_ascii=False) if variables else None,
    }


class NotCsv(ServiceError):
    """The body is declared as something other than CSV."""

    code = "unsupported_media_type"


async def import_members(
    db: Database,
    tenant_id: str,
    list_id: str,
    chunks: AsyncIterator[bytes],
    now: datetime,
    content_type: str = "text/csv",
) -> ImportReport:
    """Read a CSV stream into the list, in batches; the report of what happened to each row.

    `NotFound` for another tenant's list comes first, then `NotCsv` for another content type.
    """
    async with db.reading() as connection:
        await find_list(connection, tenant_id, list_id)
    if content_type.split(";")[0].strip().lower() != "text/csv":
        raise NotCsv(f"send the file as CSV with 'Content-Type: text/csv' (got {content_type!r})")
    rows = _csv_rows(chunks)
    header = await _first_header(rows)
    report = ImportReport()
    checker = NumberChecker()
    seen: set[str] = set()
    batch: dict[str, dict[str, Any]] = {}
    number = 1  # the header's row
    try:
        async for fields in rows:
            number += 1
            _take_row(fields, number, header, checker, report, seen, batch)
            if len(batch) >= BATCH:
                await _merge(db, (tenant_id, list_id), batch, now)
    except InvalidRequest:
        await _merge(db, (tenant_id, list_id), batch, now)  # rows before the fault are kept
        raise
    await _merge(db, (tenant_id, list_id), batch, now)
    async with db.reading() as connection:
        report.member_count = (await find_list(connection, tenant_id, list_id)).member_count
    return report


def _take_row(
    fields: list[str],
    number: int,
    header: _Header,
    checker: NumberChecker,
    report: ImportReport,
    seen: set[str],
    batch: dict[str, dict[str, Any]],
) -> None:
    """Count one CSV record and add its member to `batch`, or record why it was refused."""
    if not fields:
        return  # a blank line is not a row
    report.rows += 1
    if report.rows > MAX_ROWS:
        report.refuse(number, "", "too_many_rows", f"an import takes at most {MAX_ROWS} rows")
        return
    member = _member_of(header, fields, checker, number, report)
    if member is None:
        return
    report.imported += 1
    if member["phone"] in seen:
        report.duplicates += 1
    seen.add(member["phone"])
    batch[member["phone"]] = member


async def _first_header(rows: AsyncIterator[list[str]]) -> _Header:
    async for fields in rows:
        if fields:
            return _Header.parse(fields)
    raise InvalidRequest("body", "the CSV is empty; send a header row with a phone column")


async def _merge(
    db: Database, owner: tuple[str, str], batch: dict[str, dict[str, Any]], now: datetime
) -> None:
    """Write a batch of members; `NotFound` when the list was deleted during the import."""
    if not batch:
        return
    tenant_id, list_id = owner
    rows = [
        {**member, "list_id": list_id, "added_at": now, "updated_at": now}
        for member in batch.values()
    ]
    async with db.transaction() as connection:
        repository = ListRepository(connection)
        if not await repository.lock(list_id, tenant_id):
            raise NotFound(f"recipient list {list_id!r} was deleted during the import")
        await repository.merge_members(rows)
        await repository.touch(list_id, now)
    batch.clear()
