"""Sending a CSV through the HTTP bulk API in chunks, resumable: the engine of `smsrelay bulk`.

Each chunk is one `POST /api/sms/bulk` with an Idempotency-Key made of the run's fingerprint
(the file's hash and the message options) and the chunk's index, and a state file beside the
CSV records every accepted chunk. Run again after Ctrl-C, the same command skips the recorded
chunks, and a chunk sent but not recorded is answered from the server's stored reply: no
recipient is sent twice. A number repeated across the file is sent once.
"""

from __future__ import annotations

import asyncio
import codecs
import csv
import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from smsrelay.api.bulk_schemas import MAX_TO_CHARS, MAX_VARIABLE_CHARS
from smsrelay.domain.phone_batch import NumberChecker
from smsrelay.domain.templates import Template
from smsrelay.providers.http_support import seconds_from_retry_after
from smsrelay.services.list_import import separator_hint

STATE_SUFFIX = ".smsrelay-bulk.json"
PHONE_COLUMNS = ("phone", "to")
IN_FLIGHT_RETRIES = 20
RATE_LIMITED_RETRIES = 30  # a 429 is waited out (Retry-After) this many times


class UploadError(Exception):
    """Something the user must fix (file, key, server); the message says what."""


@dataclass(frozen=True, slots=True)
class Options:
    message: str
    category: str = "transactional"
    sender_id: str | None = None
    chunk_size: int = 5000


@dataclass
class State:
    """What a run has done so far, kept beside the CSV."""

    path: Path
    run: str
    chunks: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def load(cls, csv_path: Path, run: str) -> State:
        path = csv_path.with_name(csv_path.name + STATE_SUFFIX)
        if not path.exists():
            return cls(path, run)
        saved = json.loads(path.read_text())
        if saved.get("run") != run:
            raise UploadError(
                f"{path.name} belongs to a run of another file or other options (--message, "
                "--category, --sender-id, --chunk-size), or of an earlier smsrelay that cut the "
                "file into chunks differently; run that command (with that smsrelay) again to "
                "resume it, or to start a new broadcast delete it (the earlier run's recipients "
                "would get this one too)"
            )
        return cls(path, run, saved.get("chunks", {}))

    def record(self, index: int, answer: dict[str, Any]) -> None:
        self.chunks[str(index)] = {
            "bulkId": answer.get("bulkId"),
            "accepted": answer.get("acceptedCount", 0),
            "rejected": answer.get("rejectedCount", 0),
        }
        temporary = self.path.with_name(self.path.name + ".tmp")
        temporary.write_text(json.dumps({"run": self.run, "chunks": self.chunks}, indent=1))
        os.replace(temporary, self.path)

    @property
    def bulk_ids(self) -> list[str]:
        return [c["bulkId"] for c in self.chunks.values() if c.get("bulkId")]

    @property
    def accepted(self) -> int:
        return sum(int(c["accepted"]) for c in self.chunks.values())

    @property
    def rejected(self) -> int:
        return sum(int(c["rejected"]) for c in self.chunks.values())


# How a file is cut into chunks. A state file records chunks by index, so a run cut another way
# (by an earlier smsrelay) is another run: resuming it by index would send some rows twice.
CHUNKING = 2


def fingerprint(csv_path: Path, options: Options) -> str:
    """The run's identity: the file's bytes, every option that changes what is sent, and the
    way the file is cut into chunks (`CHUNKING`)."""
    digest = hashlib.sha256()
    with csv_path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    described = [options.message, options.category, options.sender_id, options.chunk_size]
    described += [CHUNKING]
    digest.update(json.dumps(described).encode())
    return digest.hexdigest()[:32]


def check_file(csv_path: Path, options: Options) -> None:
    """`UploadError` now, before anything is sent, for what would stop a run halfway: a file
    that is not UTF-8 or holds a NUL, no phone column, an empty message, or a message using a
    `{{name}}` no column provides (every recipient would be refused)."""
    if not options.message.strip():
        raise UploadError("--message is empty; give the text to send")
    _check_text(csv_path)
    header = check_header(csv_path)
    used = Template.parse(options.message).names
    absent = [name for name in used if name not in header]
    if absent:
        names = ", ".join("{{" + name + "}}" for name in absent)
        raise UploadError(
            f"the message uses {names} but the CSV has no column of that name (columns: "
            f"{', '.join(header)}); rename the column or change the message"
        )
    _check_rows(csv_path, header, used)


def _check_rows(csv_path: Path, header: list[str], used: tuple[str, ...]) -> None:
    """Every row is CSV the reader can take and fits the API's caps (a value past them would
    refuse its whole chunk, every run); a fault names its row (the header is row 1)."""
    phone = _phone_column(header)
    columns = [(header.index(name), name) for name in used]
    with csv_path.open(newline="", encoding="utf-8-sig") as file:
        reader = csv.reader(file)
        row = 0
        try:
            next(reader, None)
            row = 1
            for row, fields in enumerate(reader, start=2):
                if phone < len(fields) and len(fields[phone].strip()) > MAX_TO_CHARS:
                    raise UploadError(
                        f"row {row}: the phone column holds over {MAX_TO_CHARS} characters; "
                        "fix that row (nothing was sent)"
                    )
                for index, name in columns:
                    if index < len(fields) and len(fields[index]) > MAX_VARIABLE_CHARS:
                        raise UploadError(
                            f"row {row}: {name} holds over {MAX_VARIABLE_CHARS} characters; "
                            "fix that row (nothing was sent)"
                        )
        except csv.Error as exc:
            raise UploadError(
                f"row {row + 1}: not CSV this command can read ({exc}); fix that row "
                "(nothing was sent)"
            ) from None


def _check_text(csv_path: Path) -> None:
    """The whole file decodes as UTF-8 and holds no NUL; the error names the line."""
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    line = 1
    with csv_path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            try:
                text = decoder.decode(block)
            except UnicodeDecodeError as exc:
                line += block[: exc.start].count(b"\n")
                raise UploadError(
                    f"{csv_path.name} is not UTF-8 text (line {line}); save it as UTF-8 CSV "
                    "(nothing was sent)"
                ) from None
            if "\x00" in text:
                line += text[: text.index("\x00")].count("\n")
                raise UploadError(
                    f"{csv_path.name} holds a NUL character (line {line}); remove it "
                    "(nothing was sent)"
                )
            line += text.count("\n")
        try:
            decoder.decode(b"", True)
        except UnicodeDecodeError:
            raise UploadError(
                f"{csv_path.name} ends in the middle of a UTF-8 character (line {line}); save "
                "it as UTF-8 CSV (nothing was sent)"
            ) from None


def check_header(csv_path: Path) -> list[str]:
    """The header's column names; `UploadError` when the file has no phone column."""
    with csv_path.open(newline="", encoding="utf-8-sig") as file:
        header = [name.strip() for name in next(csv.reader(file), [])]
    _phone_column(header)
    return header


@dataclass
class ReadStats:
    """What reading the file skipped: numbers repeated in it (each is sent once)."""

    duplicates: int = 0


def read_chunks(
    csv_path: Path, size: int, stats: ReadStats | None = None
) -> Iterator[list[dict[str, Any]]]:
    """The file's recipients in chunks of `size`, streamed; a number seen before is skipped.

    Each recipient carries its `row` in the file (the header is row 1) for messages. A row
    too short to reach the phone column is sent with an empty number, so the server reports
    it like any other unusable number instead of it vanishing.
    """
    stats = stats if stats is not None else ReadStats()
    with csv_path.open(newline="", encoding="utf-8-sig") as file:
        reader = csv.reader(file)
        header = [name.strip() for name in next(reader, [])]
        phone = _phone_column(header)
        seen: set[str] = set()
        checker = NumberChecker()
        chunk: list[dict[str, Any]] = []
        for row, fields in enumerate(reader, start=2):
            if not fields:
                continue  # a blank line
            raw = fields[phone].strip() if phone < len(fields) else ""
            number = checker.check(raw).e164  # "+1 415…" and "+1415…" are one number
            if number is not None and number in seen:
                stats.duplicates += 1
                continue
            if number is not None:
                seen.add(number)
            chunk.append(_recipient(header, fields, phone) | {"row": row})
            if len(chunk) == size:
                yield chunk
                chunk = []
        if chunk:
            yield chunk


def _phone_column(header: list[str]) -> int:
    lowered = [name.lower() for name in header]
    for name in PHONE_COLUMNS:
        if name in lowered:
            return lowered.index(name)
    shown = ", ".join(header) or "no header row"
    raise UploadError(
        f"the CSV has no phone column (found: {shown}); name one 'phone' or 'to'"
        + separator_hint(header)
    )


def _recipient(header: list[str], fields: list[str], phone: int) -> dict[str, Any]:
    variables = {
        name: value
        for index, (name, value) in enumerate(zip(header, fields, strict=False))
        if index != phone and name
    }
    return {"to": fields[phone].strip() if phone < len(fields) else "", "variables": variables}


class BulkClient:
    """The few HTTP calls the CLI makes, with errors worded for a person at a terminal."""

    def __init__(self, session: aiohttp.ClientSession, url: str, api_key: str) -> None:
        self.session = session
        self.url = url.rstrip("/")
        self.headers = {"Authorization": f"Bearer {api_key}"}

    async def send_chunk(self, body: dict[str, Any], key: str) -> dict[str, Any]:
        """POST one chunk; waits while the same key is still in flight (an earlier run's)."""
        headers = self.headers | {"Idempotency-Key": key}
        for _ in range(IN_FLIGHT_RETRIES):
            status, answer = await self._call("POST", "/api/sms/bulk", body, headers)
            if status != 409:
                break
            await asyncio.sleep(1)
        details = answer.get("error", {}).get("details")
        if status == 422 and isinstance(details, dict) and "rejectedCount" in details:
            return {  # every recipient refused: the reasons, as a 202 would give them
                "acceptedCount": 0,
                "rejectedCount": details["rejectedCount"],
                "rejected": details.get("rejected", []),
            }
        if status != 202:
            raise UploadError(_refusal(status, answer))
        return answer

    async def bulk(self, bulk_id: str) -> dict[str, Any]:
        status, answer = await self._call("GET", f"/api/sms/bulk/{bulk_id}", None, self.headers)
        if status != 200:
            raise UploadError(_refusal(status, answer))
        return answer

    async def _call(
        self, method: str, path: str, body: dict[str, Any] | None, headers: dict[str, str]
    ) -> tuple[int, dict[str, Any]]:
        """One request; over the key's rate limit (429), again after `Retry-After`."""
        for _ in range(RATE_LIMITED_RETRIES):
            status, answer, wait = await self._once(method, path, body, headers)
            if status != 429:
                break
            await asyncio.sleep(wait)
        return status, answer

    async def _once(
        self, method: str, path: str, body: dict[str, Any] | None, headers: dict[str, str]
    ) -> tuple[int, dict[str, Any], float]:
        try:
            async with self.session.request(
                method, self.url + path, json=body, headers=headers
            ) as response:
                answer = await response.json(content_type=None)
                wait = _retry_after(response.headers.get("Retry-After"))
                return response.status, answer if isinstance(answer, dict) else {}, wait
        except TimeoutError:
            raise UploadError(
                f"{self.url} gave no answer in time; run the same command again to resume"
            ) from None
        except aiohttp.ClientConnectionError as exc:
            raise UploadError(
                f"cannot reach {self.url} ({type(exc).__name__}); is `smsrelay serve` running "
                "there? Use --url to point elsewhere"
            ) from None
        except (json.JSONDecodeError, aiohttp.ContentTypeError):
            raise UploadError(f"{self.url} did not answer as smsrelay does; check --url") from None


def _retry_after(value: str | None) -> float:
    """Seconds to wait before asking again: Retry-After (seconds or an HTTP date) held to
    0.1–30 s; 1 when absent or unreadable."""
    seconds = seconds_from_retry_after(value)
    return 1.0 if seconds is None else min(max(seconds, 0.1), 30.0)


def _refusal(status: int, answer: dict[str, Any]) -> str:
    message = answer.get("error", {}).get("message", "")
    if status == 401:
        return "the API key was refused (401); check --api-key or SMSRELAY_API_KEY"
    if status == 403:
        return f"the API key may not do this (403): {message}"
    return f"the server refused the request ({status}): {message}"


def chunk_body(options: Options, recipients: list[dict[str, Any]]) -> dict[str, Any]:
    """The chunk's request: each recipient with only the variables the message uses, so a
    column the API could not take as a variable ("First Name", a long note) is not sent."""
    used = Template.parse(options.message).names
    body: dict[str, Any] = {
        "recipients": [
            {
                "to": r["to"],
                "variables": {n: r["variables"][n] for n in used if n in r["variables"]},
            }
            for r in recipients
        ],
        "message": options.message,
        "category": options.category,
    }
    if options.sender_id:
        body["senderId"] = options.sender_id
    return body


def progress_of(views: list[dict[str, Any]]) -> dict[str, int]:
    """Counts across a run's bulks: accepted, sent, delivered, failed, and what is still open."""
    counts: dict[str, int] = {}
    for view in views:
        for status, count in view["counts"].items():
            counts[status] = counts.get(status, 0) + count
    unwritten = sum(
        v["acceptedCount"] - v["expandedCount"] for v in views if v["status"] != "canceled"
    )
    return {
        "sent": sum(counts.get(s, 0) for s in ("sent", "delivered", "undelivered")),
        "delivered": counts.get("delivered", 0),
        "failed": sum(counts.get(s, 0) for s in ("failed", "undelivered", "suppressed", "expired")),
        "unsent": counts.get("pending", 0) + counts.get("sending", 0) + unwritten,
        "awaiting_report": counts.get("sent", 0),
    }
