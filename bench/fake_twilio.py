"""A minimal, fast Twilio-compatible HTTP server for benchmarks, run in a process of its own.

It answers the 2010-04-01 Messages create, fetch and list and the Account fetch as Twilio
does, keeps what it accepted in memory (so reconciliation can find it), posts no callbacks,
and has three knobs: `--latency` (seconds before each answer), `--error-rate` (share of creates
answered 500 before anything is accepted) and `--rate-429` (share answered 429 / 20429 with
`Retry-After: 1`). `GET /stats` tells the harness how many creates it took, and when.

    .venv/bin/python bench/fake_twilio.py --port 8089 [--latency 0.02] [--error-rate 0.01]

Prints one line, `READY http://127.0.0.1:PORT ACCOUNT_SID AUTH_TOKEN`, once it listens.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import random
import time
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any

from aiohttp import web

API = "/2010-04-01"
ACCOUNT_SID = "AC" + "b" * 32
AUTH_TOKEN = "bench-fake-twilio-token"  # noqa: S105 - a throwaway credential of the fake
JSON = "application/json"


@dataclass
class Knobs:
    latency: float = 0.0
    error_rate: float = 0.0
    rate_429: float = 0.0


@dataclass
class State:
    """What the fake accepted, and the counters `/stats` reports."""

    knobs: Knobs
    messages: dict[str, dict[str, Any]] = field(default_factory=dict)
    created: int = 0
    refused: int = 0
    first_created: float | None = None
    last_created: float | None = None
    next_sid: int = 0

    def new_sid(self) -> str:
        self.next_sid += 1
        return f"SM{self.next_sid:032x}"


def message_json(sid: str, form: Any, now: str) -> dict[str, Any]:
    """The Message resource as Twilio renders it (the fields the SDK reads)."""
    path = f"{API}/Accounts/{ACCOUNT_SID}/Messages/{sid}"
    return {
        "sid": sid,
        "account_sid": ACCOUNT_SID,
        "api_version": "2010-04-01",
        "body": form.get("Body", ""),
        "date_created": now,
        "date_sent": None,
        "date_updated": now,
        "direction": "outbound-api",
        "error_code": None,
        "error_message": None,
        "from": form.get("From"),
        "messaging_service_sid": form.get("MessagingServiceSid"),
        "num_media": "0",
        "num_segments": "1",
        "price": None,
        "price_unit": "USD",
        "status": "queued",
        "subresource_uris": {"media": f"{path}/Media.json"},
        "to": form.get("To"),
        "uri": f"{path}.json",
    }


def error(status: int, code: int, message: str, **headers: str) -> web.Response:
    body = {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
    return web.Response(status=status, text=json.dumps(body), content_type=JSON, headers=headers)


def build_app(state: State) -> web.Application:
    expected = "Basic " + base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
    account = f"{API}/Accounts/{ACCOUNT_SID}"

    @web.middleware
    async def basic_auth(request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path != "/stats" and request.headers.get("Authorization") != expected:
            return error(401, 20003, "Authenticate")
        response: web.StreamResponse = await handler(request)
        return response

    async def create(request: web.Request) -> web.Response:
        form = await request.post()
        if state.knobs.latency:
            await asyncio.sleep(state.knobs.latency)
        roll = random.random()
        if roll < state.knobs.rate_429:
            state.refused += 1
            return error(429, 20429, "Too Many Requests", **{"Retry-After": "1"})
        if roll < state.knobs.rate_429 + state.knobs.error_rate:
            state.refused += 1
            return error(500, 20500, "Internal Server Error")
        sid = state.new_sid()
        body = message_json(sid, form, formatdate(usegmt=True))
        state.messages[sid] = body
        state.created += 1
        state.last_created = time.time()
        state.first_created = state.first_created or state.last_created
        return web.Response(status=201, text=json.dumps(body), content_type=JSON)

    async def fetch(request: web.Request) -> web.Response:
        found = state.messages.get(request.match_info["sid"])
        if found is None:
            return error(404, 20404, "The requested resource was not found")
        return web.json_response(found)

    async def listing(request: web.Request) -> web.Response:
        to = request.query.get("To")
        found = [m for m in state.messages.values() if to is None or m["to"] == to][-50:]
        return web.json_response(
            {"messages": found[::-1], "page": 0, "page_size": 50, "next_page_uri": None}
        )

    async def fetch_account(_: web.Request) -> web.Response:
        return web.json_response({"sid": ACCOUNT_SID, "status": "active", "type": "Full"})

    async def stats(_: web.Request) -> web.Response:
        return web.json_response(
            {
                "created": state.created,
                "refused": state.refused,
                "firstCreated": state.first_created,
                "lastCreated": state.last_created,
            }
        )

    app = web.Application(middlewares=[basic_auth])
    app.router.add_post(f"{account}/Messages.json", create)
    app.router.add_get(f"{account}/Messages.json", listing)
    app.router.add_get(f"{account}/Messages/{{sid}}.json", fetch)
    app.router.add_get(f"{account}.json", fetch_account)
    app.router.add_get("/stats", stats)
    return app


async def serve(port: int, knobs: Knobs) -> None:
    runner = web.AppRunner(build_app(State(knobs)), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port, backlog=1024)
    await site.start()
    print(f"READY http://127.0.0.1:{port} {ACCOUNT_SID} {AUTH_TOKEN}", flush=True)
    await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=8089)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each answer")
    parser.add_argument("--error-rate", type=float, default=0.0, help="share of creates → 500")
    parser.add_argument("--rate-429", type=float, default=0.0, help="share of creates → 429")
    args = parser.parse_args()
    knobs = Knobs(args.latency, args.error_rate, args.rate_429)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.port, knobs))


if __name__ == "__main__":
    main()
