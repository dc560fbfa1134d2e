"""Sending a CSV through the HTTP bulk API in chunks, resumable: the engine of `smsrelay bulk`.

Each chunk is one `POST /api/sms/bulk` with an Idempotency-Key made of the run's fingerprint
(the file's hash and the message options) and the chunk's index, and a state file beside the
CSV records every accepted chunk. Run again after Ctrl-C, the same command skips the recorded
chunks, and a chunk sent but not recorded is answered from the server's stored reply: no
recipient is sent twice. A number repeated across the file is sent once.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from smsrelay.domain.phone_batch import NumberChecker
from smsrelay.domain.templates import Template

STATE_SUFFIX = ".smsrelay-bulk.json"
PHONE_COLUMNS = ("phone", "to")
IN_FLIGHT_RETRIES = 20


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
                f"{path.name} belongs to a run of another file or message; to start a new "
                f"broadcast, delete it (the earlier run's recipients would get this one too)"
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


def fingerprint(csv_path: Path, options: Options) -> str:
    """The run's identity: the file's bytes and every option that changes what is sent."""
    digest = hashlib.sha256()
    with csv_path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    described = [options.message, options.category, options.sender_id, options.chunk_size]
    digest.update(json.dumps(described).encode())
    return digest.hexdigest()[:32]


def check_header(csv_path: Path) -> None:
    """`UploadError` now, before anything is sent, when the file has no phone column."""
    with csv_path.open(newline="", encoding="utf-8-sig") as file:
        _phone_column([name.strip() for name in next(csv.reader(file), [])])


def read_chunks(csv_path: Path, size: int) -> Iterator[list[dict[str, Any]]]:
    """The file's recipients in chunks of `size`, streamed; a number seen before is skipped."""
    with csv_path.open(newline="", encoding="utf-8-sig") as file:
        reader = csv.reader(file)
        header = [name.strip() for name in next(reader, [])]
        phone = _phone_column(header)
        seen: set[str] = set()
        checker = NumberChecker()
        chunk: list[dict[str, Any]] = []
        for fields in reader:
            if not fields or phone >= len(fields):
                continue
            raw = fields[phone].strip()
            number = checker.check(raw).e164 or raw  # "+1 415…" and "+1415…" are one number
            if number in seen:
                continue
            seen.add(number)
            chunk.append(_recipient(header, fields, phone))
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
    raise UploadError(f"the CSV has no phone column (found: {shown}); name one 'phone' or 'to'")


def _recipient(header: list[str], fields: list[str], phone: int) -> dict[str, Any]:
    variables = {
        name: value
        for index, (name, value) in enumerate(zip(header, fields, strict=False))
        if index != phone and name
    }
    return {"to": fields[phone].strip(), "variables": variables}


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
            return {"acceptedCount": 0, "rejectedCount": details["rejectedCount"]}  # all refused
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
        try:
            async with self.session.request(
                method, self.url + path, json=body, headers=headers
            ) as response:
                answer = await response.json(content_type=None)
                return response.status, answer if isinstance(answer, dict) else {}
        except aiohttp.ClientConnectionError as exc:
            raise UploadError(
                f"cannot reach {self.url} ({type(exc).__name__}); is `smsrelay serve` running "
                "there? Use --url to point elsewhere"
            ) from None
        except (json.JSONDecodeError, aiohttp.ContentTypeError):
            raise UploadError(f"{self.url} did not answer as smsrelay does; check --url") from None


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
