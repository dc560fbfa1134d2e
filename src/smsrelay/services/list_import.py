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
from collections.abc import AsyncIterator, Iterator
from dataclasses import asdict, dataclass, field
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
                "the header row has no phone column; name one column 'phone' (or 'to')"
                + separator_hint(names),
                {"header": names[:MAX_COLUMNS]},
            )
        if len(names) > MAX_COLUMNS or "" in names or len(set(lowered)) != len(names):
            raise InvalidRequest(
                "body",
                f"the header row needs 1 to {MAX_COLUMNS} distinct, non-empty column names",
                {"header": names[:MAX_COLUMNS]},
            )
        return cls(names, phone)


def separator_hint(header: list[str]) -> str:
    """A hint when a header that has no phone column was cut with another separator."""
    for separator, name in ((";", "semicolons"), ("\t", "tabs"), ("|", "bars")):
        if any(separator in column for column in header):
            return f"; the header looks separated by {name}: save the file with commas"
    return ""


_QUOTE_COMMA_OR_NEWLINE: Final = re.compile(r'["\n\r,]')  # \r ends a record for csv too


class _RecordCutter:
    """Cuts decoded text into complete CSV records (a newline inside quotes does not end one).

    Quotes are read as the csv module reads them: a quote opens a quoted field only as the
    field's first character (elsewhere, as in `5'11"`, it is text), and inside one, `""` is a
    quote. Each character is scanned once and the incomplete tail is kept as pieces, so a
    record that never ends (a stray quote) costs linear time, not a rescan per chunk.
    """

    def __init__(self) -> None:
        self.pending: list[str] = []
        self.inside = False
        self.at_field_start = True  # the next character begins a field
        self.after_close = False  # the last character closed a quoted field

    def feed(self, text: str) -> str:
        """Add `text`; the complete records it finishes ("" for none)."""
        end = 0
        inside = self.inside
        field_start = 0 if self.at_field_start else -1
        closed_at = 0 if self.after_close else -1
        for match in _QUOTE_COMMA_OR_NEWLINE.finditer(text):
            at = match.start()
            char = match.group()
            if char == '"':
                if inside:
                    inside, closed_at = False, at + 1
                elif at in (field_start, closed_at):  # opens a field, or `""` inside one
                    inside = True
            elif not inside:
                field_start = at + 1
                if char == "\n":
                    end = at + 1
        self.inside = inside
        self.at_field_start = field_start == len(text)
        self.after_close = closed_at == len(text)
        if not end:
            self.pending.append(text)
            return ""
        complete = "".join([*self.pending, text[:end]])
        self.pending = [text[end:]]
        return complete

    def rest(self) -> str:
        return "".join(self.pending)


class _Fault(InvalidRequest):
    """The stream cannot be read on from here; the records before it were all yielded."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(field, reason)
        self.reason = reason


async def _csv_rows(chunks: AsyncIterator[bytes]) -> AsyncIterator[list[str]]:
    """CSV records from a byte stream (UTF-8, an optional BOM), one complete record at a time.

    At a fault (bytes that are not UTF-8, a record the csv module refuses, a quote never
    closed) every complete record before it is yielded first, then `_Fault` names the row.
    """
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    cutter, size, row = _RecordCutter(), 0, 0
    async for chunk in chunks:
        size += len(chunk)
        if size > MAX_BYTES:
            raise _Fault("body", f"is over {MAX_BYTES} bytes from row {row + 1} on; split the file")
        text, bad = _decode(decoder, chunk)
        for fields in _records(cutter.feed(text), row):
            row += 1
            yield fields
        if bad:
            raise _Fault(
                "body",
                f"is not UTF-8 text from row {row + 1} on; save the CSV as UTF-8 and import it "
                "again",
            )
    text, bad = _decode(decoder, b"", final=True)
    if bad:
        raise _Fault("body", f"ends inside a UTF-8 character (row {row + 1}); save it as UTF-8")
    if cutter.inside:
        raise _Fault(
            "body",
            f"row {row + 1} opens a quote that is never closed, so the rest of the file would be "
            'one field; close it (or double a quote meant as text: "")',
        )
    rest = cutter.rest() + text
    if rest.strip():
        for fields in _records(rest, row):
            yield fields


def _records(text: str, row: int) -> Iterator[list[str]]:
    """The CSV records of `text` (the first is row `row + 1`), up to one the csv module cannot
    read, for which `_Fault` names its row."""
    if not text:
        return
    reader = csv.reader(io.StringIO(text, newline=""))
    while True:
        try:
            fields = next(reader, None)
        except csv.Error as exc:  # e.g. a field over csv.field_size_limit() (128 KiB)
            raise _Fault(
                "body",
                f"row {row + 1} is not CSV this import can read ({exc}); fields take at most "
                f"{MAX_VALUE} characters",
            ) from None
        if fields is None:
            return
        row += 1
        yield fields


def _decode(
    decoder: codecs.IncrementalDecoder, chunk: bytes, *, final: bool = False
) -> tuple[str, bool]:
    """The chunk's text up to its first byte that is not UTF-8, and whether there was one."""
    try:
        text: str = decoder.decode(chunk, final)
    except UnicodeDecodeError as exc:
        good: bytes = exc.object[: exc.start]
        return good.decode("utf-8", errors="replace"), True
    return text, False


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
    except _Fault as fault:
        await _merge(db, (tenant_id, list_id), batch, now)  # rows before the fault are kept
        raise InvalidRequest(
            "body",
            f"{fault.reason} (the {report.rows} rows before it were kept: {report.imported} "
            f"imported, {report.rejected} refused; importing them again only updates them)",
            {
                "rowsRead": report.rows,
                "imported": report.imported,
                "rejectedCount": report.rejected,
                "errors": [asdict(error) for error in report.errors],
            },
        ) from None
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
