"""Running the simulator: `SimulatorServer` for tests and code, `run_simulator` for the CLI."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from types import TracebackType

from aiohttp import web

from smsrelay.providers.simulator.app import Runtime, build_app
from smsrelay.providers.simulator.callbacks import CallbackSender
from smsrelay.providers.simulator.config import SimulatorConfig
from smsrelay.providers.simulator.delivery import DeliveryRunner
from smsrelay.providers.simulator.faults import Faults
from smsrelay.providers.simulator.state import SimulatorState
from smsrelay.providers.simulator.tables import MAGIC_FROM, MAGIC_TO

# Seconds aiohttp waits for in-flight requests on stop; a hanging "timeout" fault is released
# by the stop signal first, so this only bounds misbehaving clients.
_SHUTDOWN_TIMEOUT = 2.0


class SimulatorServer:
    """A Twilio-compatible HTTP server on a local port, with its state and fault knobs."""

    def __init__(self, config: SimulatorConfig | None = None) -> None:
        self.config = config if config is not None else SimulatorConfig()
        self.state = SimulatorState()
        self.base_url: str | None = None
        self._runner: web.AppRunner | None = None
        self._runtime: Runtime | None = None
        self._sender: CallbackSender | None = None

    @property
    def faults(self) -> Faults:
        return self.config.faults

    @property
    def account_sid(self) -> str:
        return self.config.account_sid

    @property
    def auth_token(self) -> str:
        return self.config.auth_token

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Listen on `host`:`port` (0 picks a free port); returns the base URL."""
        if self._runner is not None:
            raise RuntimeError("the simulator is already running; stop() it first")
        self._sender = CallbackSender(self.config, self.state)
        await self._sender.open()
        delivery = DeliveryRunner(self.config, self._sender)
        self._runtime = Runtime(self.config, self.state, delivery)
        app = build_app(self._runtime)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=_SHUTDOWN_TIMEOUT)
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port).start()
        self.base_url = _base_url(host, self._runner.addresses[0][1])
        return self.base_url

    async def stop(self) -> None:
        """Stop listening, cancel pending status progressions and close the callback session."""
        if self._runtime is not None:
            self._runtime.stopping.set()
        if self._runner is not None:
            await self._runner.cleanup()
        if self._runtime is not None:
            await self._runtime.delivery.stop()
        if self._sender is not None:
            await self._sender.close()
        self._runner = self._runtime = self._sender = None

    async def __aenter__(self) -> SimulatorServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()


def _base_url(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


def run_simulator(host: str, port: int, account_sid: str, auth_token: str) -> None:
    """Serve until interrupted (Ctrl-C), printing the URL and credentials to use."""
    config = SimulatorConfig(account_sid=account_sid, auth_token=auth_token)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(SimulatorServer(config), host, port))


async def serve(server: SimulatorServer, host: str, port: int) -> None:
    """Start `server`, print the banner and serve until cancelled or SIGTERM, then stop it."""
    base_url = await server.start(host, port)
    print(banner(base_url, server.config), flush=True)
    stopping = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stopping.set)
    try:
        await stopping.wait()
    finally:
        await server.stop()


def banner(base_url: str, config: SimulatorConfig) -> str:
    """What to tell a developer on start: where to point the Twilio adapter, and how."""
    failures = ", ".join(
        f"*{f.suffix} -> {f.status} {f.error_code}" for f in config.delivery_failures
    )
    return "\n".join(
        [
            f"Twilio-compatible SMS simulator listening on {base_url}",
            f"  TWILIO_API_BASE_URL={base_url}",
            f"  TWILIO_ACCOUNT_SID={config.account_sid}",
            f"  TWILIO_AUTH_TOKEN={config.auth_token}",
            "  TWILIO_FROM_PHONE_NUMBER=+15005550006  (any sender is accepted)",
            f"  refused To numbers: {', '.join(sorted(MAGIC_TO))}",
            f"  refused From numbers: {', '.join(sorted(MAGIC_FROM))}",
            f"  failing deliveries (To ending): {failures}",
        ]
    )
