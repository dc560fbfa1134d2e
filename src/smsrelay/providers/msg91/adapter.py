"""The MSG91 provider: flow API v5 over aiohttp, with every failure classified here.

Sending is `POST {base}/api/v5/flow` with the `authkey` header and the JSON body
`{template_id, short_url, sender, recipients: [{mobiles, <body variable>: text}]}`, one
recipient per call so that MSG91's request id names one message (it becomes
`provider_message_id`). The MSG91 template must hold the whole text in that one variable
(default `var1`) and be linked in MSG91's panel to its DLT template and to the sender header;
flow v5 takes no DLT entity id in the request (MSG91's "DLT key points for B2B platforms":
`PE_ID` is for every API "apart from OneAPI"), so `dlt_entity_id` is checked here and kept for
the operator, not sent. Per-message callback URLs and validity are not part of flow v5 either:
reports go to the webhook set in MSG91's panel.

Reconciliation: flow v5 has no way to ask about a message (no look-up by request id, none by
number), so `fetch` and `find_sent` always return None and `can_look_up_messages` is False.
MSG91's final word comes only from delivery reports (`statuses.parse_delivery_report`). The
resulting policy for an AMBIGUOUS attempt (timeout or 5xx after the request went out, or
MSG91's 311 "duplicate"): it must never be resent automatically, because None here means
"cannot tell", not "not sent". It stays unresolved until a report for its request id arrives
(possible only when the id was received) or a deadline passes, and then ends failed for an
operator to resend. To keep that set small, only what was certainly not written (refused
connection, DNS or TLS failure, a timeout before the request went out) is RETRYABLE.

`verify` asks for the transactional route's balance, `GET {base}/api/balance.php?authkey=...&type=4`
(api.msg91.com/apidoc/basic/route-balance.php): the cheapest authenticated call MSG91
documents. That endpoint takes the key in the query string, so no error raised here carries a
URL or a library message that could hold it.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import aiohttp

from smsrelay.logs import mask_text
from smsrelay.providers.base import (
    Outcome,
    ProviderConfigError,
    ProviderError,
    ProviderMessage,
    SendRequest,
    SendResult,
)
from smsrelay.providers.http_support import (
    Wire,
    retry_after_for,
    transport_failure,
    watching,
    wire_tracing,
)
from smsrelay.providers.msg91.errors import DOCS_URL, classify

FLOW_PATH = "/api/v5/flow"
BALANCE_PATH = "/api/balance.php"
TRANSACTIONAL_ROUTE = "4"  # balance.php `type`: 1 promotional, 4 transactional (MSG91 help)
SHORT_URL_OFF = "0"  # flow v5 `short_url`: "1" on, "0" off; links stay as registered with DLT

ENV_VARS = {
    "auth_key": "MSG91_AUTH_KEY",
    "sender_id": "MSG91_SENDER_ID",
    "dlt_entity_id": "MSG91_DLT_ENTITY_ID",
    "template_id": "MSG91_TEMPLATE_ID",
    "api_base_url": "MSG91_API_BASE_URL",
}

# TRAI headers are 6 characters: letters for service/transactional, digits for promotional;
# MSG91 error 203 says "Your sender ID must be 6 characters".
_SENDER = re.compile(r"[A-Za-z0-9]{6}")
_DIGITS = re.compile(r"[0-9]+")
_PRINTABLE = re.compile(r"[\x21-\x7e]+")  # a header value: printable ASCII, no spaces
_IDENTIFIER = re.compile(r"[A-Za-z0-9_-]{1,64}")
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")
# Transport failures: aiohttp's own, the OS errors it lets through, and asyncio's timeout.
_TRANSPORT_FAILURES: tuple[type[BaseException], ...] = (aiohttp.ClientError, OSError)

Scrub = Callable[[str], str]


@dataclass(frozen=True, slots=True)
class Msg91Config:
    """One MSG91 account's settings; a bad value raises `ProviderConfigError` naming it."""

    auth_key: str = field(repr=False)
    sender_id: str
    dlt_entity_id: str
    template_id: str
    api_base_url: str = "https://control.msg91.com"
    body_variable: str = "var1"

    def __post_init__(self) -> None:
        values = {name: getattr(self, name) for name in (*ENV_VARS, "body_variable")}
        problems = [(ENV_VARS.get(name, name), text) for name, text in config_problems(values)]
        if problems:
            names = tuple(name for name, _ in problems)
            details = "; ".join(f"{name} {problem}" for name, problem in problems)
            raise ProviderConfigError(f"MSG91 is misconfigured: {details}", names)


# Each setting's shape, by Msg91Config field: (pattern, what to change when it does not match).
_SHAPES: dict[str, tuple[re.Pattern[str], str]] = {
    "auth_key": (_PRINTABLE, "must be set, without spaces"),
    "sender_id": (_SENDER, "must be exactly 6 letters or digits"),
    "dlt_entity_id": (_DIGITS, "must be the numeric PE ID"),
    "template_id": (_IDENTIFIER, "must be MSG91's id"),
    "api_base_url": (re.compile(r"https?://.+"), "must be a URL"),
    "body_variable": (_IDENTIFIER, "must name a template variable"),
}


def config_problems(values: Mapping[str, str]) -> list[tuple[str, str]]:
    """(Msg91Config field, problem) for every given value of the wrong shape."""
    return [
        (name, problem)
        for name, (pattern, problem) in _SHAPES.items()
        if name in values and not pattern.fullmatch(values[name])
    ]


@dataclass(frozen=True, slots=True)
class _Answer:
    status: int
    retry_after: str | None
    text: str


class Msg91Provider:
    """Sends SMS through MSG91's flow API v5 and never raises for a provider failure."""

    name = "msg91"
    can_look_up_messages = False  # see the module docstring: None from a look-up is no answer

    def __init__(self, config: Msg91Config, *, timeout_seconds: float = 10.0) -> None:
        self._config = config
        self._base_url = config.api_base_url.rstrip("/")
        self._timeout_seconds = timeout_seconds
        self._session: aiohttp.ClientSession | None = None

    async def send(self, request: SendRequest) -> SendResult:
        refused = _refused_request(request)
        if refused is not None:
            return refused
        wire = Wire()
        try:
            with watching(wire):
                answer = await self._call("POST", FLOW_PATH, body=self._flow_body(request))
        except _TRANSPORT_FAILURES as exc:
            return transport_failure("MSG91", exc, wire, _describe(exc))
        return _flow_result(answer, self._scrub)

    async def fetch(self, provider_message_id: str) -> ProviderMessage | None:
        """Flow v5 cannot look a request id up: always None, meaning "no answer"."""
        return None

    async def find_sent(self, to: str, body: str, since: datetime) -> ProviderMessage | None:
        """Flow v5 cannot list messages: always None, meaning "no answer", never "not sent"."""
        return None

    async def verify(self) -> None:
        params = {"authkey": self._config.auth_key, "type": TRANSACTIONAL_ROUTE}
        try:
            answer = await self._call("GET", BALANCE_PATH, params=params)
        except _TRANSPORT_FAILURES as exc:
            # `from None`: the request URL carries the key, and some aiohttp errors show it.
            raise ConnectionError(f"MSG91 could not check the balance: {_describe(exc)}") from None
        _check_balance_answer(answer, self._scrub)

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def _call(
        self,
        method: str,
        path: str,
        *,
        body: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
    ) -> _Answer:
        """One HTTP exchange under our timeout, redirects not followed."""
        headers = {"authkey": self._config.auth_key, "Accept": "application/json"}
        data = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            data = json.dumps(body).encode("utf-8")
        async with asyncio.timeout(self._timeout_seconds):
            async with self._http().request(
                method,
                self._base_url + path,
                params=params,
                data=data,
                headers=headers,
                allow_redirects=False,
            ) as response:
                raw = await response.read()
                text = raw.decode("utf-8", errors="replace")
                return _Answer(response.status, response.headers.get("Retry-After"), text)

    def _http(self) -> aiohttp.ClientSession:
        """The session, made on first use inside the running loop (aiohttp needs one)."""
        if self._session is None:
            self._session = aiohttp.ClientSession(trace_configs=[wire_tracing()])
        return self._session

    def _flow_body(self, request: SendRequest) -> dict[str, Any]:
        recipient = {
            "mobiles": request.to.removeprefix("+"),
            self._config.body_variable: request.body,
        }
        return {
            "template_id": self._config.template_id,
            "short_url": SHORT_URL_OFF,
            "sender": request.sender or self._config.sender_id,
            "recipients": [recipient],
        }

    def _scrub(self, text: str) -> str:
        """Provider text without the auth key or anything that looks like a phone number."""
        return mask_text(text.replace(self._config.auth_key, "[redacted]"))


def _refused_request(request: SendRequest) -> SendResult | None:
    """What MSG91 would refuse anyway is refused here, before any call."""
    if not _E164.fullmatch(request.to):
        return _permanent("the recipient is not an E.164 number (+ and country code)")
    if request.sender is not None and not _SENDER.fullmatch(request.sender):
        return _permanent("MSG91 needs a 6-character sender header (letters or digits)")
    return None


def _permanent(message: str) -> SendResult:
    return SendResult(Outcome.PERMANENT, error=ProviderError(message))


def _flow_result(answer: _Answer, scrub: Scrub) -> SendResult:
    body = _json_object(answer.text)
    if 200 <= answer.status < 300 and body is not None and body.get("type") == "success":
        return _accepted(body)
    if 200 <= answer.status < 300 and (body is None or body.get("type") != "error"):
        # MSG91 took the request, but its answer says neither success nor error.
        return SendResult(
            Outcome.AMBIGUOUS, error=ProviderError("MSG91's answer to the send could not be read")
        )
    return _refusal(answer, body or {}, scrub)


def _accepted(body: dict[str, Any]) -> SendResult:
    request_id = body.get("message")
    if not isinstance(request_id, str) or not request_id.strip():
        return SendResult(
            Outcome.AMBIGUOUS, error=ProviderError("MSG91 reported success without a request id")
        )
    return SendResult(
        Outcome.ACCEPTED, provider_message_id=request_id.strip(), provider_status="success"
    )


def _refusal(answer: _Answer, body: dict[str, Any], scrub: Scrub) -> SendResult:
    code = _code(body.get("code"))
    outcome = classify(code, answer.status)
    message = body.get("message")
    text = scrub(message) if isinstance(message, str) and message.strip() else None
    error = ProviderError(
        message=text or f"HTTP {answer.status} from MSG91",
        code=code,
        more_info=DOCS_URL,
        details={"httpStatus": answer.status},
    )
    retry_after = retry_after_for(outcome, answer.retry_after)
    return SendResult(outcome, error=error, retry_after_seconds=retry_after)


def _describe(exc: BaseException) -> str:
    """The failure's kind only: library messages may repeat the URL, which can hold the key."""
    if isinstance(exc, TimeoutError) and not isinstance(exc, aiohttp.ClientError):
        return "timed out"
    return f"failed ({type(exc).__name__})"


def _check_balance_answer(answer: _Answer, scrub: Scrub) -> None:
    if answer.status in (401, 403) or (200 <= answer.status < 300 and not _is_number(answer.text)):
        said = scrub(_balance_message(answer.text))
        raise ProviderConfigError(
            f"MSG91 rejected the balance check (HTTP {answer.status}: {said}): check "
            "MSG91_AUTH_KEY and the key's whitelisted IPs",
            ("MSG91_AUTH_KEY",),
        )
    if not 200 <= answer.status < 300:
        raise ConnectionError(f"MSG91 could not check the balance: HTTP {answer.status}")


def _is_number(text: str) -> bool:
    try:
        return Decimal(text.strip()).is_finite()
    except InvalidOperation:
        return False


def _balance_message(text: str) -> str:
    body = _json_object(text)
    for key in ("message", "msg"):
        if body is not None and isinstance(body.get(key), str):
            return str(body[key])[:200]
    return text.strip()[:200] or "no explanation"


def _json_object(text: str) -> dict[str, Any] | None:
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _code(value: object) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    text = str(value).strip()
    return text or None
