"""Where a send's CPU goes: the app called as ASGI in this process, no sockets, no client.

    .venv/bin/python bench/bench_send_cpu.py [-n 4000] [-c 64]

Target (a) compares `POST /api/sms/send` with `GET /healthz` over HTTP, where both also pay
uvicorn's per-request work and the bench client shares the same two cores. Here each request's
CPU is measured alone (`time.process_time` over the whole phase, so the SQLite writer thread
counts too), for:

  healthz            `GET /healthz`, the baseline's app share;
  send               `POST /api/sms/send`, stored durably (SQLite, group commit);
  send, no write     the same, with the outbox write replaced by the answer of the first one:
                     what checking, pricing and answering a send costs without storing it;
  writer thread      the SQLite writer thread's own CPU per stored send.

Start-up objects are frozen out of the garbage collector first, as `smsrelay serve` does.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from smsrelay.api.app import create_app
from smsrelay.bootstrap import Container, bootstrap
from smsrelay.config import load_settings
from smsrelay.services.submit import Submission
from smsrelay.services.tenants import create_tenant
from smsrelay.store import thread_writer
from smsrelay.store.database import Database

SEND = {"to": "+15005550006", "message": "Your code is 123456", "category": "transactional"}
Request = tuple[str, str, list[tuple[bytes, bytes]], bytes]


async def call(app: Any, request: Request) -> int:
    method, path, headers, body = request
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    delivered = False
    statuses: list[int] = []

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if delivered:
            await asyncio.Event().wait()  # the client never disconnects
        delivered = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    await app(scope, receive, send)
    return statuses[0]


async def cpu_per_request(app: Any, request: Request, n: int, concurrency: int) -> float:
    """Microseconds of this process's CPU per request, `concurrency` in flight."""
    gate = asyncio.Semaphore(concurrency)

    async def one() -> int:
        async with gate:
            return await call(app, request)

    started = time.process_time()
    statuses = set(await asyncio.gather(*(one() for _ in range(n))))
    spent = time.process_time() - started
    if not statuses <= {200, 202}:
        raise RuntimeError(f"{request[0]} {request[1]} answered {statuses}")
    return spent / n * 1e6


class WriterClock:
    """CPU the SQLite writer thread spends in transactions."""

    def __init__(self) -> None:
        self.seconds = 0.0
        original = thread_writer.ThreadWriter._transaction

        def timed(writer: Any, work: Any) -> Any:
            started = time.thread_time()
            try:
                return original(writer, work)
            finally:
                self.seconds += time.thread_time() - started

        thread_writer.ThreadWriter._transaction = timed  # type: ignore[method-assign]


def without_write(container: Container) -> Callable[[], None]:
    """Answer every send with the first one's stored entry; returns the undo."""
    real = container.submissions.submit
    first: list[Any] = []

    async def submit(submission: Submission) -> Any:
        if not first:
            first.append(await real(submission))
        return first[0]

    container.submissions.submit = submit  # type: ignore[method-assign]
    return lambda: setattr(container.submissions, "submit", real)


async def main(n: int, concurrency: int) -> None:
    clock = WriterClock()
    with tempfile.TemporaryDirectory(prefix="smsrelay-cpu-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        database = Database(url)
        await database.migrate()
        await database.dispose()
        settings = load_settings(
            database_url=url,
            public_url="http://127.0.0.1:8000",
            api_key_rate_limit="1000000/second",
        )
        container = bootstrap(settings)
        await container.start(dispatch=False)
        try:
            app = create_app(container, manage=False)
            tenant = await create_tenant(container.db, "bench")
            key = f"Bearer {tenant.api_key}".encode()
            headers = [(b"authorization", key), (b"content-type", b"application/json")]
            health: Request = ("GET", "/healthz", [], b"")
            send: Request = ("POST", "/api/sms/send", headers, json.dumps(SEND).encode())
            gc.collect()
            gc.freeze()
            for request in (health, send):  # warm-up
                await cpu_per_request(app, request, 500, concurrency)
            rows: dict[str, float] = {}
            rows["healthz"] = await cpu_per_request(app, health, n, concurrency)
            before = clock.seconds
            rows["send"] = await cpu_per_request(app, send, n, concurrency)
            rows["writer thread (of send)"] = (clock.seconds - before) / n * 1e6
            undo = without_write(container)
            rows["send, no write"] = await cpu_per_request(app, send, n, concurrency)
            undo()
        finally:
            await container.stop()
    print(f"{n} requests per row, {concurrency} in flight, SQLite; CPU per request:")
    for name, micros in rows.items():
        print(f"  {name:28} {micros:7.0f} µs   ({micros / rows['healthz']:.2f}× healthz)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", "-n", type=int, default=4000)
    parser.add_argument("--concurrency", "-c", type=int, default=64)
    args = parser.parse_args()
    asyncio.run(main(args.requests, args.concurrency))
