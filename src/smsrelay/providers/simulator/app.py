"""The simulator's aiohttp application: Twilio API 2010-04-01 Messages and Account routes."""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hmac
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

from aiohttp import hdrs, web

from smsrelay.providers.simulator.config import SimulatorConfig
from smsrelay.providers.simulator.delivery import DeliveryRunner
from smsrelay.providers.simulator.listing import filters_of, parse_list_query, select
from smsrelay.providers.simulator.masking import logger, mask_number
from smsrelay.providers.simulator.resources import (
    Page,
    account_json,
    error_json,
    message_json,
    page_json,
)
from smsrelay.providers.simulator.state import (
    CreateRequest,
    SimulatedMessage,
    SimulatorState,
    new_message_sid,
    utc_now,
)
from smsrelay.providers.simulator.tables import API_VERSION, REST_ERRORS
from smsrelay.providers.simulator.validation import rejection_code

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Runtime:
    """What the handlers share: configuration, state, the delivery runner, the stop signal."""

    config: SimulatorConfig
    state: SimulatorState
    delivery: DeliveryRunner
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    started_at: datetime = field(default_factory=utc_now)

    async def wait_unless_stopping(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stopping.wait(), seconds)


RUNTIME: Final = web.AppKey("smsrelay_simulator_runtime", Runtime)


def build_app(runtime: Runtime) -> web.Application:
    """The application serving Twilio's routes for one account."""
    app = web.Application(middlewares=[_twilio_not_found, _basic_auth])
    app[RUNTIME] = runtime
    account = f"/{API_VERSION}/Accounts/{{account_sid}}"
    app.router.add_post(f"{account}/Messages.json", create_message)
    app.router.add_get(f"{account}/Messages.json", list_messages)
    app.router.add_get(f"{account}/Messages/{{sid}}.json", fetch_message)
    app.router.add_get(f"{account}.json", fetch_account)
    return app


def error_response(code: int, detail: str | None = None, **headers: str) -> web.Response:
    """Twilio's error body for `code`, with the HTTP status Twilio pairs with it."""
    status = REST_ERRORS[code].http_status
    return web.json_response(error_json(code, detail), status=status, headers=headers)


@web.middleware
async def _twilio_not_found(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except (web.HTTPNotFound, web.HTTPMethodNotAllowed):
        return error_response(20404)


@web.middleware
async def _basic_auth(request: web.Request, handler: Handler) -> web.StreamResponse:
    config = request.app[RUNTIME].config
    if not _credentials_match(request.headers.get(hdrs.AUTHORIZATION), config):
        detail = "Your AccountSid or AuthToken was incorrect."
        return error_response(20003, detail, **{"WWW-Authenticate": 'Basic realm="Twilio API"'})
    if request.match_info.get("account_sid", config.account_sid) != config.account_sid:
        return error_response(20404)
    return await handler(request)


def _credentials_match(header: str | None, config: SimulatorConfig) -> bool:
    login, password = _basic_credentials(header or "")
    login_ok = hmac.compare_digest(login.encode(), config.account_sid.encode())
    password_ok = hmac.compare_digest(password.encode(), config.auth_token.encode())
    return login_ok and password_ok


def _basic_credentials(header: str) -> tuple[str, str]:
    """(login, password) of a Basic Authorization header (RFC 7617); empty when malformed."""
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return "", ""
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return "", ""
    login, _, password = decoded.partition(":")
    return login, password


async def create_message(request: web.Request) -> web.Response:
    """POST Messages.json: refuse (injected fault or Twilio rule) or accept and answer 201."""
    runtime = request.app[RUNTIME]
    arrived = utc_now()  # before the body is read: what a provider counts against a sender's rate
    params = _first_values(await request.post())
    await asyncio.sleep(runtime.config.faults.latency)
    refusal = _injected_fault(runtime) or rejection_code(params)
    if refusal is not None:
        return _refuse(runtime, params, refusal, arrived)
    message = _accept(runtime, params)
    return await _answer_accepted(runtime, params, message, arrived)


def _first_values(form: Mapping[str, object]) -> dict[str, str]:
    params: dict[str, str] = {}
    for name, value in form.items():
        params.setdefault(name, str(value))
    return params


def _injected_fault(runtime: Runtime) -> int | None:
    """20429 or 20500 when a fault before acceptance is rolled (nothing is accepted)."""
    faults = runtime.config.faults
    if faults.roll(faults.rate_429):
        return 20429
    if faults.roll(faults.error_5xx_rate):
        return 20500
    return None


def _refuse(runtime: Runtime, params: dict[str, str], code: int, arrived: datetime) -> web.Response:
    retry_after = str(runtime.config.faults.retry_after_seconds)
    headers = {"Retry-After": retry_after} if code == 20429 else {}
    response = error_response(code, **headers)
    runtime.state.requests.append(CreateRequest(params, response.status, code, None, arrived))
    logger.info(
        "message refused",
        extra={"action": "simulator.refused", "code": code, "to": mask_number(params.get("To"))},
    )
    return response


def _accept(runtime: Runtime, params: dict[str, str]) -> SimulatedMessage:
    message = _new_message(runtime.config.account_sid, params)
    runtime.state.accept(message)
    runtime.delivery.start(message)
    logger.info(
        "message accepted",
        extra={"action": "simulator.accepted", "sid": message.sid, "to": mask_number(message.to)},
    )
    return message


def _new_message(account_sid: str, params: dict[str, str]) -> SimulatedMessage:
    validity = params.get("ValidityPeriod", "")
    return SimulatedMessage(
        sid=new_message_sid(),
        account_sid=account_sid,
        to=params["To"],
        from_=params.get("From"),
        messaging_service_sid=params.get("MessagingServiceSid"),
        body=params.get("Body", ""),
        status_callback=params.get("StatusCallback"),
        validity_period=int(validity) if validity.isdigit() else None,
    )


async def _answer_accepted(
    runtime: Runtime, params: dict[str, str], message: SimulatedMessage, arrived: datetime
) -> web.Response:
    faults = runtime.config.faults
    if faults.roll(faults.error_5xx_after_accept_rate):
        runtime.state.requests.append(CreateRequest(params, 500, 20500, message.sid, arrived))
        return error_response(20500)
    held = faults.roll(faults.timeout_rate)
    record = CreateRequest(params, 201, None, message.sid, arrived, held=held)
    runtime.state.requests.append(record)
    answer = web.json_response(message_json(message), status=201)  # as it was when accepted
    if held:
        await runtime.wait_unless_stopping(faults.timeout_seconds)
    return answer


async def list_messages(request: web.Request) -> web.Response:
    """GET Messages.json: the accepted messages matching the filters, newest first, paged."""
    try:
        query = parse_list_query(request.query)
    except ValueError as error:
        return error_response(20001, str(error))
    found = select(request.app[RUNTIME].state.accepted, query)
    start = query.page * query.page_size
    chunk = found[start : start + query.page_size]
    has_next = len(found) > start + query.page_size
    page = Page(request.path, filters_of(request.query), query.page, query.page_size, has_next)
    return web.json_response(page_json([message_json(m) for m in chunk], page))


async def fetch_message(request: web.Request) -> web.Response:
    """GET Messages/{sid}.json."""
    message = request.app[RUNTIME].state.get(request.match_info["sid"])
    if message is None:
        return error_response(20404)
    return web.json_response(message_json(message))


async def fetch_account(request: web.Request) -> web.Response:
    """GET Accounts/{sid}.json: how an adapter checks its credentials."""
    runtime = request.app[RUNTIME]
    return web.json_response(account_json(runtime.config.account_sid, runtime.started_at))
