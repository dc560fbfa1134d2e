"""Twilio's create-message call straight over aiohttp: the SDK's exact request, read the SDK's way.

The send path is the dispatcher's hot path. The official SDK reaches the same POST through
five layers, a multipart-capable form writer and an instance object per call, which added
about 40 % to the CPU of each create (py-spy on a worker); here it is one aiohttp request on
one session with the form encoded once. What goes out is what
twilio-python 9 sends for `client.messages.create_async(...)` (form fields in its order, its
headers, Basic auth, no redirects, no retries), and an answer is read as its
`Version._parse_create` and `Version.exception` read it, so every outcome, error code and
message stays as the adapter reported them through the SDK (tests/providers compare the two
on the wire). Fetch, list and account calls stay on the SDK (adapter.py).

Never retried here: a POST that failed with a 5xx or timed out may already have sent the SMS.
"""

from __future__ import annotations

import asyncio
import base64
import json
import platform
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote_plus

import aiohttp
from twilio import __version__ as twilio_version

from smsrelay.providers.base import Outcome, ProviderError, SendResult
from smsrelay.providers.http_support import retry_after_for, wire_tracing
from smsrelay.providers.twilio.error_codes import classify, more_info_url

# CreateMessage `ValidityPeriod` accepts 1..36000 seconds (twilio-oai@d50069b4).
VALIDITY_RANGE = (1, 36000)
# The order in which the SDK's MessageList._create_async lays out the fields we use.
_FIELD_ORDER = ("To", "StatusCallback", "ValidityPeriod", "From", "MessagingServiceSid", "Body")
_FIELD_KNOWN = frozenset(_FIELD_ORDER)
# The fields of an RFC 9457 problem body, as the SDK tests for them (Version.exception).
_PROBLEM_FIELDS = ("type", "title", "status", "code")


def basic_authorization(account_sid: str, auth_token: str) -> str:
    """The Authorization header value for an account's SID and token."""
    pair = f"{account_sid}:{auth_token}".encode("latin-1")
    return "Basic " + base64.b64encode(pair).decode("ascii")


def sdk_headers(authorization: str) -> dict[str, str]:
    """The headers twilio-python sends with a POST (ClientBase.get_headers), plus the auth."""
    user_agent = (
        f"twilio-python/{twilio_version} ({platform.system()} {platform.machine()}) "
        f"Python/{platform.python_version()}"
    )
    return {
        "User-Agent": user_agent,
        "X-Twilio-Client": f"python-{twilio_version}",
        "Accept-Charset": "utf-8",
        "Content-Type": "application/x-www-form-urlencoded",
        "Accept": "application/json",
        "Authorization": authorization,
    }


def create_form(fields: Mapping[str, str | int]) -> bytes:
    """The url-encoded body, in the SDK's field order; fields we do not know are refused.

    What `urlencode` writes for these pairs (quote_plus on each value; the names need no
    quoting), without its generic handling of keys, sequences and bytes: half its cost, on
    every send.
    """
    unknown = fields.keys() - _FIELD_KNOWN
    if unknown:
        raise ValueError(f"not a create-message field: {sorted(unknown)}")
    pairs = [f"{name}={quote_plus(str(fields[name]))}" for name in _FIELD_ORDER if name in fields]
    return "&".join(pairs).encode("ascii")


@dataclass(frozen=True, slots=True)
class Answer:
    """What Twilio answered: the status, the raw body and the Retry-After header."""

    status: int
    body: bytes
    retry_after: str | None = None


class MessagesApi:
    """POSTs to one account's Messages resource; the session is made inside the running loop."""

    def __init__(
        self, *, account_sid: str, authorization: str, base_url: str, timeout_seconds: float
    ) -> None:
        self._url = f"{base_url.rstrip('/')}/2010-04-01/Accounts/{account_sid}/Messages.json"
        self._headers = sdk_headers(authorization)
        self._timeout_seconds = timeout_seconds
        self._session: aiohttp.ClientSession | None = None

    async def create(self, form: bytes) -> Answer:
        """One POST, bounded by the timeout; transport failures raise (aiohttp's, OSError)."""
        session = self._open()
        async with asyncio.timeout(self._timeout_seconds):
            async with session.post(
                self._url, data=form, headers=self._headers, allow_redirects=False
            ) as response:
                body = await response.read()
                return Answer(response.status, body, response.headers.get("Retry-After"))

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None:
            # The trace hooks tell a failure before the request went out from one after it.
            # No aiohttp timeout (its default is 5 minutes): `create` bounds each call itself,
            # and a second timer per request is work on every send for nothing.
            self._session = aiohttp.ClientSession(
                trace_configs=[wire_tracing()], timeout=aiohttp.ClientTimeout(total=None)
            )
        return self._session


def send_result(answer: Answer) -> SendResult:
    """The outcome of a create call from Twilio's answer."""
    if 200 <= answer.status < 300:
        return _accepted(answer.body)
    status, error = answer_error(answer)
    code = error.code if isinstance(error.code, int) else None
    outcome = classify(code, status)
    retry_after = retry_after_for(outcome, answer.retry_after)
    return SendResult(outcome, error=error, retry_after_seconds=retry_after)


def _accepted(body: bytes) -> SendResult:
    try:
        message = json.loads(body) if body else {}
    except ValueError as exc:
        return _unreadable(str(exc))
    if not isinstance(message, dict):
        return _unreadable("not a JSON object")
    sid = message.get("sid")
    if not sid:
        return SendResult(
            Outcome.AMBIGUOUS,
            error=ProviderError("Twilio accepted the request but returned no message SID"),
        )
    return SendResult(
        Outcome.ACCEPTED, provider_message_id=str(sid), provider_status=message.get("status")
    )


def _unreadable(reason: str) -> SendResult:
    """An answer arrived but could not be read (e.g. a 201 that is not JSON)."""
    return SendResult(
        Outcome.AMBIGUOUS, error=ProviderError(f"Twilio's answer could not be read: {reason}")
    )


def answer_error(answer: Answer) -> tuple[int | None, ProviderError]:
    """(the HTTP status to classify by, Twilio's error) from a non-2xx answer."""
    try:
        payload = json.loads(answer.body)
    except ValueError:
        payload = None
    if isinstance(payload, dict) and all(name in payload for name in _PROBLEM_FIELDS):
        return as_int(payload["status"]), _problem_error(payload)
    if isinstance(payload, dict):
        return answer.status, _legacy_error(payload, answer.status)
    return answer.status, ProviderError(f"HTTP {answer.status} from Twilio")


def _problem_error(payload: dict[str, Any]) -> ProviderError:
    """An RFC 9457 problem body; its own `status` is the one the SDK classifies by."""
    code = as_int(payload["code"])
    errors = payload.get("errors")
    return ProviderError(
        message=payload.get("detail") or payload["title"],
        code=code,
        more_info=payload["type"] or (more_info_url(code) if code else None),
        details={"errors": errors} if errors else None,
    )


def _legacy_error(payload: dict[str, Any], status: int) -> ProviderError:
    """`{code, message, more_info, status, details}`; a code equal to the status is no code."""
    code = as_int(payload.get("code"))
    code = None if code == status else code
    message = str(payload["message"]).lstrip() if "message" in payload else ""
    details = payload.get("details")
    return ProviderError(
        message=message or f"HTTP {status} from Twilio",
        code=code,
        more_info=more_info_url(code) if code else None,
        details=details if isinstance(details, dict) else None,
    )


def as_int(value: object) -> int | None:
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None
