"""Real `smsrelay` processes (serve, simulator, CLI) on free loopback ports, driven over HTTP."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import throwaway_postgres

STARTUP_SECONDS = 20.0
STOP_SECONDS = 10.0
CLI_SECONDS = 30.0
# Settings a developer's shell may carry that would change what the processes do.
_FOREIGN_PREFIXES = ("SMSRELAY_", "TWILIO_", "MSG91_")
_FOREIGN_NAMES = ("SMTP_URL",)


def smsrelay_executable() -> str:
    """The `smsrelay` console script of the interpreter running the tests."""
    beside = Path(sys.executable).with_name("smsrelay")
    if beside.exists():
        return str(beside)
    found = shutil.which("smsrelay")
    assert found is not None, "the smsrelay console script is not installed"
    return found


def free_port() -> int:
    """A port nothing listens on right now (bound to port 0, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def clean_env(database_url: str, **extra: str) -> dict[str, str]:
    """The test process's environment without smsrelay/provider settings, plus `extra`."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(_FOREIGN_PREFIXES) and name not in _FOREIGN_NAMES
    }
    env["SMSRELAY_DATABASE_URL"] = database_url
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


@dataclass(frozen=True)
class Cli:
    """Runs `smsrelay …` to completion in a scratch directory with a clean environment."""

    database_url: str
    workdir: Path

    def __call__(
        self, *args: str, env: Mapping[str, str] | None = None, timeout: float = CLI_SECONDS
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [smsrelay_executable(), *args],
            env=clean_env(self.database_url, **(env or {})),
            cwd=self.workdir,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def create_tenant(self, name: str) -> dict[str, Any]:
        result = self("tenants", "create", name)
        assert result.returncode == 0, result.stderr
        created: dict[str, Any] = json.loads(result.stdout)
        return created


@dataclass
class Process:
    """A long-running `smsrelay` subprocess whose output goes to files (no pipe to fill)."""

    args: list[str]
    env: dict[str, str]
    workdir: Path
    popen: subprocess.Popen[bytes] | None = None
    stdout_path: Path = field(init=False)
    stderr_path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.stdout_path = self.workdir / "stdout.log"
        self.stderr_path = self.workdir / "stderr.log"

    def start(self) -> None:
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.popen = subprocess.Popen(
                [smsrelay_executable(), *self.args],
                env=self.env,
                cwd=self.workdir,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
            )

    @property
    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def describe(self) -> str:
        code = None if self.popen is None else self.popen.poll()
        return f"smsrelay {' '.join(self.args)} (exit {code})\n{self.stdout}\n{self.stderr}"

    def wait_until(self, ready: Callable[[], bool], within: float = STARTUP_SECONDS) -> None:
        """Poll `ready` until true; fail early, with the output, if the process exits."""
        assert self.popen is not None
        deadline = time.monotonic() + within
        while not ready():
            assert self.popen.poll() is None, f"exited while starting: {self.describe()}"
            assert time.monotonic() < deadline, f"not ready in {within} s: {self.describe()}"
            time.sleep(0.05)

    def terminate(self, within: float = STOP_SECONDS) -> int:
        """SIGTERM, then wait; returns the exit code (negative: killed by that signal)."""
        assert self.popen is not None
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
        return self.popen.wait(timeout=within)

    def kill(self) -> None:
        """Make sure the process is gone (teardown); never raises for an exited process."""
        if self.popen is None or self.popen.poll() is not None:
            return
        try:
            self.terminate(within=5)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(timeout=5)


@dataclass
class Server:
    """A running `smsrelay serve` and an HTTP client pointed at it."""

    url: str
    process: Process
    client: httpx.Client

    def auth(self, api_key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {api_key}"}

    def send(self, api_key: str, **body: Any) -> httpx.Response:
        return self.client.post("/api/sms/send", json=body, headers=self.auth(api_key))

    def wait_for_status(
        self, api_key: str, outbox_id: str, *statuses: str, within: float = 20.0
    ) -> dict[str, Any]:
        """Poll the outbox entry until its status is one of `statuses`."""
        deadline = time.monotonic() + within
        while True:
            response = self.client.get(f"/api/sms/outbox/{outbox_id}", headers=self.auth(api_key))
            assert response.status_code == 200, response.text
            entry: dict[str, Any] = response.json()
            if entry["status"] in statuses:
                return entry
            assert time.monotonic() < deadline, (
                f"{outbox_id} still {entry['status']!r} after {within} s, wanted {statuses}: "
                f"{entry}\n{self.process.describe()}"
            )
            time.sleep(0.05)


def _healthy(client: httpx.Client) -> bool:
    try:
        return client.get("/healthz").status_code == 200
    except httpx.TransportError:
        return False


@pytest.fixture(scope="session")
def e2e_database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A SQLite file, or a PostgreSQL database of the e2e servers' own, migrated.

    Never the in-process tests' database: a server started here keeps dispatching for the
    whole session and would take their messages (and hold locks while they empty tables).
    """
    with throwaway_postgres("e2e") as postgres:
        if postgres is None:
            yield f"sqlite:///{tmp_path_factory.mktemp('e2e-db') / 'smsrelay.db'}"
            return
        result = Cli(postgres, tmp_path_factory.mktemp("e2e-migrate"))("migrate")
        assert result.returncode == 0, result.stderr
        yield postgres


@pytest.fixture(scope="session")
def cli(e2e_database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Cli:
    return Cli(e2e_database_url, tmp_path_factory.mktemp("e2e-cli"))


StartServer = Callable[..., Server]


def _server_starter(
    database_url: str, make_dir: Callable[[], Path]
) -> tuple[StartServer, list[Server]]:
    started: list[Server] = []

    def start(*extra_args: str, **env: str) -> Server:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        settings = {
            "SMSRELAY_PUBLIC_URL": url,
            "SMSRELAY_DISPATCH_POLL_SECONDS": "0.05",
            "SMSRELAY_SIMULATOR_STEP_DELAY": "0.02",
            **env,
        }
        args = ["serve", "--host", "127.0.0.1", "--port", str(port), *extra_args]
        process = Process(args, clean_env(database_url, **settings), make_dir())
        client = httpx.Client(base_url=url, timeout=10)
        server = Server(url, process, client)
        started.append(server)
        process.start()
        process.wait_until(lambda: _healthy(client))
        return server

    return start, started


def _stop_all(started: list[Server]) -> None:
    for server in started:
        server.client.close()
        server.process.kill()


@pytest.fixture(scope="session")
def server(e2e_database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One `smsrelay serve` shared by the session's tests."""
    start, started = _server_starter(e2e_database_url, lambda: tmp_path_factory.mktemp("serve"))
    try:
        yield start()
    finally:
        _stop_all(started)


@pytest.fixture
def start_server(e2e_database_url: str, tmp_path: Path) -> Iterator[StartServer]:
    """Start a private `smsrelay serve` (extra args, env overrides); stopped after the test."""
    counter = iter(range(1_000))

    def make_dir() -> Path:
        path = tmp_path / f"serve-{next(counter)}"
        path.mkdir()
        return path

    start, started = _server_starter(e2e_database_url, make_dir)
    try:
        yield start
    finally:
        _stop_all(started)


@pytest.fixture(scope="session")
def tenant(cli: Cli, server: Server) -> dict[str, Any]:
    """A tenant (`tenantId`, `apiKey`, …) created with `smsrelay tenants create acme`."""
    return cli.create_tenant("acme")


@pytest.fixture
def start_process(e2e_database_url: str, tmp_path: Path) -> Iterator[Callable[..., Process]]:
    """Start any `smsrelay` command in the background; killed after the test."""
    started: list[Process] = []

    def start(*args: str, **env: str) -> Process:
        workdir = tmp_path / f"process-{len(started)}"
        workdir.mkdir()
        process = Process(list(args), clean_env(e2e_database_url, **env), workdir)
        started.append(process)
        process.start()
        return process

    try:
        yield start
    finally:
        for process in started:
            process.kill()
