"""Where a send's CPU goes: the app called as ASGI in this process, no sockets, no client.

    .venv/bin/python bench/bench_send_cpu.py [-n 4000] [-c 64] [--http]

Target (a) compares `POST /api/sms/send` with `GET /healthz` over HTTP, where both also pay
uvicorn's per-request work and the bench client shares the same two cores. Here each request's
CPU is measured alone (`time.process_time` over the whole phase, so the SQLite writer thread
counts too), for:

  healthz            `GET /healthz`, the baseline's app share;
  send               `POST /api/sms/send`, stored durably (SQLite, group commit);
  send, no write     the same, with the outbox write replaced by the answer of the first one:
                     what checking, pricing and answering a send costs without storing it;
  writer thread      the SQLite writer thread's own CPU per stored send;
  durable write only a route (first in the route table, added here) that stores a copy of a
                     row built once, through the same group commit, and answers 202 with its
                     id: no key, no checks, no pricing. The least any durable send costs here.

The garbage collector is tuned first as `smsrelay serve` tunes it (start-up objects frozen,
young passes every 10,000 allocations).

With `--http`, the same three routes are then measured over HTTP as target (a) measures them:
the app under uvicorn in a process of its own, 64 requests in flight from an aiohttp client in
this one, each rate against healthz's.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import uvicorn
from bench_send import checked, free_port, run_phase
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from starlette.requests import Request as HttpRequest

from smsrelay.api.app import create_app
from smsrelay.bootstrap import Container, bootstrap
from smsrelay.cli import _tune_garbage_collector
from smsrelay.config import load_settings
from smsrelay.domain.ids import new_id
from smsrelay.services.submit import NewMessage, Submission, build_row, utcnow
from smsrelay.services.tenants import authenticate, create_tenant
from smsrelay.store import thread_writer
from smsrelay.store.database import Database

SEND = {"to": "+15005550006", "message": "Your code is 123456", "category": "transactional"}
JSON = b"application/json"
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

        thread_writer.ThreadWriter._transaction = timed  # type: ignore[method-assign,assignment]


def without_write(container: Container) -> Callable[[], None]:
    """Answer every send with the first one's stored entry; returns the undo."""
    real = container.submissions.submit
    first: list[Any] = []

    async def submit(submission: Submission) -> Any:
        if not first:
            first.append(await real(submission))
        return first[0]

    container.submissions.submit = submit  # type: ignore[method-assign,assignment]
    return lambda: setattr(container.submissions, "submit", real)


def add_write_only(app: FastAPI, container: Container, api_key: str) -> None:
    """`POST /bench/write-only`, matched first: store a copy of one built row, answer its id."""
    built: list[dict[str, Any]] = []

    async def write_only(request: HttpRequest) -> JSONResponse:
        await request.body()
        if not built:
            principal = await authenticate(container.db, api_key)
            policy = await container.policy_for(principal.tenant_id)
            new = NewMessage(to=SEND["to"], message=SEND["message"], category=SEND["category"])
            built.append(build_row(policy, principal, new, utcnow()))
        entry = await container.submissions.submit(Submission(built[0] | {"id": new_id("sms")}))
        return JSONResponse({"outboxId": entry.outbox_id}, status_code=202)

    app.add_api_route("/bench/write-only", write_only, methods=["POST"])
    app.router.routes.insert(0, app.router.routes.pop())


async def new_database(workdir: Path) -> tuple[str, str]:
    """(database URL, API key) of a migrated SQLite file in `workdir` with one tenant."""
    url = f"sqlite:///{workdir / 'bench.db'}"
    database = Database(url)
    try:
        await database.migrate()
        tenant = await create_tenant(database, "bench")
    finally:
        await database.dispose()
    return url, tenant.api_key


def settings_for(url: str, port: int = 8000) -> Any:
    return load_settings(
        database_url=url,
        public_url=f"http://127.0.0.1:{port}",
        api_key_rate_limit="1000000/second",  # capacity, not the per-key policy
    )


def requests_for(api_key: str) -> dict[str, Request]:
    headers = [(b"authorization", f"Bearer {api_key}".encode()), (b"content-type", JSON)]
    return {
        "healthz": ("GET", "/healthz", [], b""),
        "send": ("POST", "/api/sms/send", headers, json.dumps(SEND).encode()),
        "durable write only": ("POST", "/bench/write-only", headers, b"{}"),
    }


async def in_process(n: int, concurrency: int) -> None:
    clock = WriterClock()
    with tempfile.TemporaryDirectory(prefix="smsrelay-cpu-") as tmp:
        url, api_key = await new_database(Path(tmp))
        container = bootstrap(settings_for(url))
        await container.start(dispatch=False)
        try:
            app = create_app(container, manage=False)
            add_write_only(app, container, api_key)
            requests = requests_for(api_key)
            _tune_garbage_collector()  # as `smsrelay serve` does
            for request in requests.values():  # warm-up
                await cpu_per_request(app, request, 500, concurrency)
            rows: dict[str, float] = {}
            rows["healthz"] = await cpu_per_request(app, requests["healthz"], n, concurrency)
            before = clock.seconds
            rows["send"] = await cpu_per_request(app, requests["send"], n, concurrency)
            rows["writer thread (of send)"] = (clock.seconds - before) / n * 1e6
            undo = without_write(container)
            rows["send, no write"] = await cpu_per_request(app, requests["send"], n, concurrency)
            undo()
            rows["durable write only"] = await cpu_per_request(
                app, requests["durable write only"], n, concurrency
            )
        finally:
            await container.stop()
    print(f"in process: {n} requests per row, {concurrency} in flight, SQLite; CPU per request:")
    for name, micros in rows.items():
        print(f"  {name:28} {micros:7.0f} µs   ({micros / rows['healthz']:.2f}× healthz)")


def serve(port: int, workdir: Path) -> None:
    """The child of `--http`: the same app (and the write-only route) under uvicorn."""
    url, api_key = asyncio.run(new_database(workdir))
    container = bootstrap(settings_for(url, port))
    app = create_app(container, dispatch=False)
    add_write_only(app, container, api_key)
    print(f"KEY {api_key}", flush=True)
    _tune_garbage_collector()
    uvicorn.run(
        app, host="127.0.0.1", port=port, log_level="warning", access_log=False, proxy_headers=False
    )


def over_http(n: int, concurrency: int) -> None:
    """Requests per second through uvicorn and the bench client, each row against healthz."""
    with tempfile.TemporaryDirectory(prefix="smsrelay-cpu-") as tmp:
        port = free_port()
        command = [sys.executable, __file__, "--serve", str(port), "--workdir", tmp]
        child = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        try:
            assert child.stdout is not None
            api_key = child.stdout.readline().split()[-1]
            rates = asyncio.run(http_rates(f"http://127.0.0.1:{port}", api_key, n, concurrency))
        finally:
            child.terminate()
            child.wait(timeout=20)
    print(f"over HTTP: {n} requests per row, {concurrency} in flight, SQLite; per second:")
    for name, rate in rates.items():
        print(f"  {name:28} {rate:7,.0f}/s  ({rate / rates['healthz']:.2f} of healthz)")


async def http_rates(url: str, api_key: str, n: int, concurrency: int) -> dict[str, float]:
    headers = {"Authorization": f"Bearer {api_key}"}
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(url, connector=connector, headers=headers) as session:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get("/healthz") as response:
                    if response.status == 200:
                        break
            await asyncio.sleep(0.1)
        phases = {
            "healthz": checked("GET", "/healthz", 200),
            "send": checked("POST", "/api/sms/send", 202, SEND),
            "durable write only": checked("POST", "/bench/write-only", 202, {}),
        }
        for request in phases.values():  # warm-up
            await run_phase(session, 500, concurrency, request)
        rates = {}
        for name, request in phases.items():
            phase = await run_phase(session, n, concurrency, request)
            if phase.errors:
                raise RuntimeError(f"{name}: {phase.errors} errors")
            rates[name] = phase.rate
        return rates


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", "-n", type=int, default=4000)
    parser.add_argument("--concurrency", "-c", type=int, default=64)
    parser.add_argument("--http", action="store_true", help="also measure over HTTP")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.workdir)
    else:
        asyncio.run(in_process(args.requests, args.concurrency))
        if args.http:
            over_http(args.requests, args.concurrency)
