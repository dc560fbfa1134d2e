"""Issue 7's performance targets in one run, each as a ratio to a baseline measured in the same run.

    .venv/bin/python bench/bench_targets.py [--database sqlite|postgresql://…] [--json out.json]

Starts a fake Twilio (`bench/fake_twilio.py`, its own process), `smsrelay serve
--no-dispatcher`, `smsrelay worker` processes (the real Twilio adapter talks to the fake through
`TWILIO_API_BASE_URL`) and a no-op form app (`bench/noop_app.py`), then measures:

  (a) `POST /api/sms/send` → 202 per second vs `GET /healthz` of the same process;
  (b) `bench/bench_bulk.py`, when it exists (a 100,000-recipient bulk request);
  (c) messages sent end to end per second (first claim → last result recorded) vs a bare
      aiohttp loop POSTing the same form to the same fake at the same concurrency;
  (d) signed `POST /api/webhooks/twilio/status` per second vs a no-op form endpoint.

PostgreSQL runs get a database of their own, dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import platform
import secrets
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
from bench_send import (
    SEND_BODY,
    Phase,
    Request,
    all_entries,
    checked,
    free_port,
    outbox_page,
    run_phase,
    smsrelay_executable,
)
from sqlalchemy.engine import make_url

from smsrelay.providers.twilio.signature import compute_signature

BENCH = Path(__file__).resolve().parent
SENDER = "+15005550006"
STARTUP_SECONDS = 60.0


# --- targets and the arithmetic ----------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """A result passes with `result / baseline >= min_ratio` (and `result >= min_result`)."""

    text: str
    min_ratio: float | None = None
    min_result: float | None = None
    max_ratio: float | None = None


TARGETS = {
    "a": Target("≥ 0.85", min_ratio=0.85),
    "c": Target("≥ 0.85 and ≥ 2,000/s", min_ratio=0.85, min_result=2000.0),
    "d": Target("≥ 0.8", min_ratio=0.8),
}


@dataclass(frozen=True)
class Row:
    """One line of the table; `ratio` is result / baseline unless the target says otherwise."""

    what: str
    result: float | None
    baseline: float | None
    unit: str
    target: str
    passed: bool | None
    note: str = ""
    ratio: float | None = None


def ratio_of(result: float | None, baseline: float | None) -> float | None:
    if result is None or not baseline:
        return None
    return result / baseline


def judge(target: Target, result: float, baseline: float) -> bool:
    """Whether `result` against `baseline` meets `target`."""
    ratio = ratio_of(result, baseline)
    if ratio is None:
        return False
    checks = [
        target.min_ratio is None or ratio >= target.min_ratio,
        target.max_ratio is None or ratio <= target.max_ratio,
        target.min_result is None or result >= target.min_result,
    ]
    return all(checks)


def measured_row(key: str, what: str, result: float, baseline: float, note: str = "") -> Row:
    target = TARGETS[key]
    passed = judge(target, result, baseline)
    return Row(what, result, baseline, "/s", target.text, passed, note, ratio_of(result, baseline))


def dispatch_rate(entries: list[dict[str, Any]]) -> tuple[int, float]:
    """(messages sent, per second from the first claim to the last recorded acceptance)."""
    sent = [e for e in entries if e["status"] in ("sent", "delivered")]
    if not sent:
        return 0, 0.0
    first = min(_at(e, "lastAttemptAt") for e in entries if e["timestamps"]["lastAttemptAt"])
    last = max(_at(e, "sentAt") for e in sent)
    return len(sent), len(sent) / max((last - first).total_seconds(), 1e-9)


def _at(entry: dict[str, Any], name: str) -> datetime:
    return datetime.fromisoformat(entry["timestamps"][name])


# --- options -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    database: str
    requests: int
    concurrency: int
    workers: int
    dispatch_concurrency: int
    latency: float
    error_rate: float
    rate_429: float
    phase_timeout: float
    bulk_repeat: int
    json_path: Path | None
    only: frozenset[str] = frozenset("abcd")

    @property
    def is_sqlite(self) -> bool:
        return self.database.startswith("sqlite")

    @property
    def dispatch_slots(self) -> int:
        return self.workers * self.dispatch_concurrency


def parse_options(argv: list[str]) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", default="sqlite", help="sqlite, or a postgresql:// server")
    parser.add_argument("--requests", "-n", type=int, default=5000, help="messages per phase")
    parser.add_argument("--concurrency", "-c", type=int, default=64, help="HTTP requests in flight")
    parser.add_argument("--workers", type=int, help="worker processes (1 SQLite, 2 PostgreSQL)")
    parser.add_argument("--dispatch-concurrency", type=int, default=64, help="sends per worker")
    parser.add_argument("--latency", type=float, default=0.0, help="fake provider latency (s)")
    parser.add_argument("--error-rate", type=float, default=0.0, help="fake provider 500 share")
    parser.add_argument("--rate-429", type=float, default=0.0, help="fake provider 429 share")
    parser.add_argument("--phase-timeout", type=float, default=300.0, help="seconds per phase")
    parser.add_argument("--bulk-repeat", type=int, default=1, help="bench_bulk.py --repeat")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument(
        "--only",
        default="abcd",
        help="the rows to report, e.g. d ((a) and (c) still run for (c) and (d): they make "
        "the messages those rows need)",
    )
    args = parser.parse_args(argv)
    workers = args.workers or (1 if args.database.startswith("sqlite") else 2)
    return Options(
        args.database,
        args.requests,
        args.concurrency,
        workers,
        args.dispatch_concurrency,
        args.latency,
        args.error_rate,
        args.rate_429,
        args.phase_timeout,
        args.bulk_repeat,
        args.json,
        frozenset(args.only) & frozenset("abcd"),
    )


# --- processes ---------------------------------------------------------------------------------


@dataclass
class Started:
    name: str
    process: subprocess.Popen[bytes]
    log: Path

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]


class Processes:
    """Every process the run starts; each is stopped (SIGTERM, then SIGKILL) on the way out."""

    def __init__(self, workdir: Path, env: dict[str, str]) -> None:
        self.workdir = workdir
        self.env = env
        self.started: list[Started] = []

    def start(self, name: str, *args: str) -> Started:
        log = self.workdir / f"{name}.log"
        with log.open("wb") as output:
            process = subprocess.Popen(
                list(args),
                env=self.env,
                cwd=self.workdir,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        started = Started(name, process, log)
        self.started.append(started)
        return started

    def stop(self, started: Started) -> None:
        if started.process.poll() is None:
            started.process.send_signal(signal.SIGTERM)
        try:
            started.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            started.process.kill()
            started.process.wait(timeout=5)

    def stop_all(self) -> None:
        for started in reversed(self.started):
            self.stop(started)


@contextmanager
def bench_database(database: str, workdir: Path) -> Iterator[str]:
    """A SQLite file in `workdir`, or a fresh PostgreSQL database dropped afterwards."""
    if database.startswith("sqlite"):
        yield f"sqlite:///{workdir / 'bench.db'}"
        return
    name = f"smsrelay_bench_{secrets.token_hex(3)}"
    asyncio.run(_admin(database, f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(database).set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(_admin(database, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _admin(server_url: str, statement: str) -> None:
    url = make_url(server_url).set(drivername="postgresql", database="postgres")
    connection = await asyncpg.connect(url.render_as_string(hide_password=False))
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@dataclass(frozen=True)
class Fake:
    url: str
    account_sid: str
    auth_token: str


def start_fake(processes: Processes, options: Options) -> Fake:
    started = processes.start(
        "fake-twilio",
        sys.executable,
        str(BENCH / "fake_twilio.py"),
        f"--port={free_port()}",
        f"--latency={options.latency}",
        f"--error-rate={options.error_rate}",
        f"--rate-429={options.rate_429}",
    )
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        for line in started.log.read_text().splitlines():
            if line.startswith("READY "):
                _, url, sid, token = line.split()
                return Fake(url, sid, token)
        if started.process.poll() is not None:
            break
        time.sleep(0.05)
    raise RuntimeError(f"the fake provider did not start:\n{started.tail()}")


def server_env(database_url: str, public_url: str, fake: Fake, options: Options) -> dict[str, str]:
    """This shell's environment minus smsrelay/provider settings, plus the bench's."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("SMSRELAY_", "TWILIO_", "MSG91_"))
    }
    return env | {
        "SMSRELAY_DATABASE_URL": database_url,
        "SMSRELAY_PUBLIC_URL": public_url,
        "SMSRELAY_PROVIDER": "twilio",
        "SMSRELAY_API_KEY_RATE_LIMIT": "1000000/second",  # capacity, not the per-key policy
        "SMSRELAY_DISPATCH_CONCURRENCY": str(options.dispatch_concurrency),
        "TWILIO_ACCOUNT_SID": fake.account_sid,
        "TWILIO_AUTH_TOKEN": fake.auth_token,
        "TWILIO_FROM_PHONE_NUMBER": SENDER,
        "TWILIO_API_BASE_URL": fake.url,
    }


def run_cli(env: dict[str, str], workdir: Path, *args: str) -> str:
    result = subprocess.run(
        [smsrelay_executable(), *args],
        env=env,
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode:
        raise RuntimeError(f"smsrelay {' '.join(args)} failed:\n{result.stderr[-3000:]}")
    return result.stdout


# --- the phases --------------------------------------------------------------------------------


@dataclass
class Run:
    """What the phases share: URLs, the key, the processes."""

    options: Options
    processes: Processes
    api_url: str
    noop_url: str
    fake: Fake
    api_key: str


def session(base_url: str, concurrency: int, **headers: str) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        base_url,
        connector=aiohttp.TCPConnector(limit=concurrency),
        timeout=aiohttp.ClientTimeout(total=60),
        headers=headers,
    )


async def wait_healthy(url: str, started: Started) -> None:
    async with session(url, 1) as client:
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            try:
                async with client.get("/healthz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            if started.process.poll() is not None:
                break
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{started.name} did not start:\n{started.tail()}")


async def measure_ingest(run: Run) -> tuple[Row, Phase, Phase]:
    """(a): sends accepted per second against GET /healthz of the same process."""
    n, c = run.options.requests, run.options.concurrency
    async with session(run.api_url, c, Authorization=f"Bearer {run.api_key}") as client:
        health = checked("GET", "/healthz", 200)
        await run_phase(client, min(n, 500), c, health)  # warm-up
        baseline = await run_phase(client, n, c, health)
        sends = await run_phase(client, n, c, checked("POST", "/api/sms/send", 202, SEND_BODY))
    row = measured_row("a", "(a) POST /api/sms/send → 202", sends.rate, baseline.rate)
    return row, baseline, sends


def form_for(to: str) -> dict[str, str]:
    return {"To": to, "From": SENDER, "Body": SEND_BODY["message"], "StatusCallback": "x"}


async def bare_dispatch(run: Run) -> Phase:
    """The baseline for (c): an aiohttp loop POSTing the adapter's form to the fake."""
    fake, slots = run.fake, run.options.dispatch_slots
    pair = f"{fake.account_sid}:{fake.auth_token}".encode()
    auth = "Basic " + base64.b64encode(pair).decode()
    path = f"/2010-04-01/Accounts/{fake.account_sid}/Messages.json"
    form = form_for(str(SEND_BODY["to"])) | {
        "StatusCallback": f"{run.api_url}/api/webhooks/twilio/status?outboxId=sms_x"
    }

    async def post(client: aiohttp.ClientSession) -> str | None:
        async with client.post(path, data=form) as response:
            await response.read()
            return None if response.status == 201 else f"{response.status}"

    async with session(fake.url, slots, Authorization=auth) as client:
        return await run_phase(client, run.options.requests, slots, post)


async def measure_dispatch(run: Run) -> tuple[Row, list[dict[str, Any]]]:
    """(c): start the workers on the backlog (a) left; rate from the outbox's own timestamps."""
    bare = await bare_dispatch(run)
    workers = [
        run.processes.start(f"worker-{i}", smsrelay_executable(), "worker")
        for i in range(run.options.workers)
    ]
    async with session(run.api_url, 4, Authorization=f"Bearer {run.api_key}") as client:
        await wait_drained(client, workers)
        for worker in workers:
            run.processes.stop(worker)
        entries = await all_entries(client)
    done, rate = dispatch_rate(entries)
    note = f"{done} of {len(entries)} sent; {run.options.workers} worker(s)"
    row = measured_row("c", "(c) dispatch end to end", rate, bare.rate, note)
    return row, entries


async def wait_drained(client: aiohttp.ClientSession, workers: list[Started]) -> None:
    """Until nothing is `pending` or `sending`."""
    while True:
        busy = False
        for status in ("pending", "sending"):
            page = await outbox_page(client, {"status": status, "limit": "1"})
            busy = busy or bool(page["items"])
        if not busy:
            return
        if all(worker.process.poll() is not None for worker in workers):
            raise RuntimeError(f"every worker exited:\n{workers[0].tail()}")
        await asyncio.sleep(0.2)


def callbacks(run: Run, entries: list[dict[str, Any]]) -> list[tuple[dict[str, str], str, str]]:
    """(params, outboxId, signature) of a signed `delivered` callback for each sent entry."""
    prepared = []
    for entry in entries:
        sid = entry["messageId"]
        if not sid:
            continue
        params = {
            "MessageSid": sid,
            "SmsSid": sid,
            "MessageStatus": "delivered",
            "SmsStatus": "delivered",
            "AccountSid": run.fake.account_sid,
            "From": SENDER,
            "To": entry["recipientPhoneNumber"],
            "ApiVersion": "2010-04-01",
        }
        outbox_id = entry["outboxId"]
        url = f"{run.api_url}/api/webhooks/twilio/status?outboxId={outbox_id}"
        prepared.append((params, outbox_id, compute_signature(url, params, run.fake.auth_token)))
    return prepared


def posting(path: str, prepared: list[tuple[dict[str, str], str, str]]) -> Request:
    remaining = iter(prepared)

    async def post(client: aiohttp.ClientSession) -> str | None:
        params, outbox_id, signature = next(remaining)
        async with client.post(
            path,
            params={"outboxId": outbox_id},
            data=params,
            headers={"X-Twilio-Signature": signature},
        ) as response:
            text = await response.text()
            return None if response.status == 200 else f"{response.status} {text[:160]}"

    return post


async def measure_webhooks(run: Run, entries: list[dict[str, Any]]) -> Row:
    """(d): signed status callbacks per second against a no-op form endpoint."""
    prepared = callbacks(run, entries)
    if not prepared:
        return Row("(d) POST /api/webhooks/twilio/status", None, None, "/s", "≥ 0.8", False)
    c = run.options.concurrency
    async with session(run.noop_url, c) as client:
        await run_phase(client, min(len(prepared), 500), c, posting("/noop-form", prepared))
        baseline = await run_phase(client, len(prepared), c, posting("/noop-form", prepared))
    async with session(run.api_url, c) as client:
        path = "/api/webhooks/twilio/status"
        hooks = await run_phase(client, len(prepared), c, posting(path, prepared))
    note = f"{hooks.errors} errors" if hooks.errors else ""
    return measured_row(
        "d", "(d) POST /api/webhooks/twilio/status", hooks.rate, baseline.rate, note
    )


def measure_bulk(options: Options) -> Row:
    """(b): `bench/bench_bulk.py` when it exists; its last line is its JSON summary."""
    script = BENCH / "bench_bulk.py"
    what = "(b) bulk 100,000 → durable 202"
    target = "≤ 1.5 s, ≥ 0.6 of raw"
    if not script.exists():
        return Row(what, None, None, "s", target, None, "not available (no bench_bulk.py)")
    server = [] if options.is_sqlite else ["--database-url", options.database]
    command = [sys.executable, str(script), "--repeat", str(options.bulk_repeat), *server]
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=options.phase_timeout, check=False
        )
    except subprocess.TimeoutExpired:
        return Row(what, None, None, "s", target, False, "timed out")
    lines = done.stdout.strip().splitlines()
    if done.returncode or not lines:
        print(done.stderr[-2000:], file=sys.stderr)
        return Row(what, None, None, "s", target, False, f"bench_bulk.py exited {done.returncode}")
    return bulk_row(json.loads(lines[-1]), what, target)


def bulk_row(summary: dict[str, Any], what: str, target: str) -> Row:
    """bench_bulk's summary as a row: seconds to the 202 vs raw executemany (ratio raw / bulk)."""
    bulk, raw = summary["seconds_to_202"], summary["raw_executemany_seconds"]
    note = f"peak +{summary['peak_mb']} MB (raw +{summary['raw_peak_mb']} MB)"
    passed = bool(summary["meets_target"])
    return Row(what, bulk, raw, " s", target, passed, note, ratio_of(raw, bulk))


def row_key(row: Row) -> str:
    """The target's letter: "d" for "(d) POST …"."""
    return row.what[1]


# --- the report --------------------------------------------------------------------------------


def fmt(value: float | None, unit: str = "") -> str:
    if value is None:
        return "—"
    return f"{value:,.0f}{unit}" if value >= 100 else f"{value:,.2f}{unit}"


def verdict(passed: bool | None) -> str:
    return {True: "pass", False: "FAIL", None: "—"}[passed]


def print_table(rows: list[Row], meta: dict[str, Any]) -> None:
    for key, value in meta.items():
        print(f"{key + ':':10} {value}")
    print()
    header = f"{'what':40} {'result':>10} {'baseline':>10} {'ratio':>6} {'target':>22} {'':>5}"
    print(header)
    for row in rows:
        ratio = "—" if row.ratio is None else f"{row.ratio:.2f}"
        print(
            f"{row.what:40} {fmt(row.result, row.unit):>10} {fmt(row.baseline, row.unit):>10} "
            f"{ratio:>6} {row.target:>22} {verdict(row.passed):>5}  {row.note}"
        )


def run_meta(options: Options, started: datetime, load_before: float) -> dict[str, Any]:
    backend = "SQLite" if options.is_sqlite else "PostgreSQL"
    return {
        "command": shlex.join([sys.executable, *sys.argv]),
        "date": started.isoformat(timespec="seconds"),
        "host": f"{platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
        "load": f"{load_before:.2f} before, {os.getloadavg()[0]:.2f} after (1-min average)",
        "setup": (
            f"{backend}; serve --no-dispatcher + {options.workers} worker(s) × "
            f"{options.dispatch_concurrency} sends; {options.requests} messages; "
            f"{options.concurrency} HTTP requests in flight; fake provider latency "
            f"{options.latency} s, 500s {options.error_rate:.0%}, 429s {options.rate_429:.0%}"
        ),
    }


async def measure_all(run: Run) -> list[Row]:
    timeout = run.options.phase_timeout
    async with asyncio.timeout(timeout):
        ingest, _, _ = await measure_ingest(run)
    async with asyncio.timeout(timeout):
        dispatch, entries = await measure_dispatch(run)
    async with asyncio.timeout(timeout):
        webhooks = await measure_webhooks(run, entries)
    return [ingest, dispatch, webhooks]


def start_servers(processes: Processes, port: int) -> str:
    noop_port = free_port()
    api = processes.start(
        "serve", smsrelay_executable(), "serve", "--no-dispatcher", "--port", str(port)
    )
    noop = processes.start(
        "noop", sys.executable, str(BENCH / "noop_app.py"), f"--port={noop_port}"
    )

    async def ready() -> None:
        await wait_healthy(f"http://127.0.0.1:{port}", api)
        await wait_healthy(f"http://127.0.0.1:{noop_port}", noop)

    asyncio.run(ready())
    return f"http://127.0.0.1:{noop_port}"


def main(argv: list[str] | None = None) -> None:
    options = parse_options(sys.argv[1:] if argv is None else argv)
    started, load_before = datetime.now(UTC), os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="smsrelay-targets-") as tmp, ExitStack() as stack:
        workdir = Path(tmp)
        url = stack.enter_context(bench_database(options.database, workdir))
        processes = Processes(workdir, dict(os.environ))
        stack.callback(processes.stop_all)
        fake = start_fake(processes, options)
        port = free_port()
        api_url = f"http://127.0.0.1:{port}"
        processes.env = server_env(url, api_url, fake, options)
        run_cli(processes.env, workdir, "migrate")
        api_key = json.loads(run_cli(processes.env, workdir, "tenants", "create", "bench"))[
            "apiKey"
        ]
        noop_url = start_servers(processes, port)
        run = Run(options, processes, api_url, noop_url, fake, api_key)
        rows = asyncio.run(measure_all(run)) if options.only - {"b"} else []
        if "b" in options.only:
            rows.insert(1, measure_bulk(options))
        rows = [row for row in rows if row_key(row) in options.only]
    meta = run_meta(options, started, load_before)
    print_table(rows, meta)
    if options.json_path is not None:
        payload = {**meta, "rows": [asdict(row) for row in rows]}
        options.json_path.write_text(json.dumps(payload, indent=2) + "\n")


if __name__ == "__main__":
    main()
