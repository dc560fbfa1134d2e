"""The Twilio provider: sends over aiohttp (messages_api), looks up through the official SDK."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import aiohttp
from twilio.base.exceptions import TwilioException, TwilioRestException, TwilioServiceException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.rest import Client

from smsrelay.domain.status import Status
from smsrelay.providers.base import (
    Outcome,
    ProviderConfigError,
    ProviderError,
    ProviderMessage,
    SendRequest,
    SendResult,
)
from smsrelay.providers.http_support import Wire, transport_failure, watching, wire_tracing
from smsrelay.providers.twilio.error_codes import more_info_url
from smsrelay.providers.twilio.messages_api import (
    VALIDITY_RANGE,
    MessagesApi,
    as_int,
    basic_authorization,
    create_form,
    send_result,
)
from smsrelay.providers.twilio.statuses import our_status

CREDENTIAL_SETTINGS = ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN")
SENDER_SETTINGS = ("TWILIO_MESSAGING_SERVICE_SID", "TWILIO_FROM_PHONE_NUMBER")

# The SDK prefixes the body's `message` with its own words ("Unable to create record: ").
_SDK_MESSAGE_PREFIX = re.compile(r"^Unable to \w+ record:?\s*")
# How many recent messages to a number find_sent looks through.
_FIND_SENT_LIMIT = 50
# Everything an SDK call can raise for a provider-side or network failure: Twilio's own
# exceptions, aiohttp's (and the OS errors it may let through, incl. TimeoutError from
# asyncio.timeout), and ValueError for a success body that is not JSON.
_CALL_FAILURES: tuple[type[BaseException], ...] = (
    TwilioException,
    aiohttp.ClientError,
    OSError,
    ValueError,
)

_T = TypeVar("_T")


class _BasicAuthHeader:
    """Credentials for the SDK's `credential_provider` hook, as a ready Authorization header.

    Without it the SDK hands aiohttp a `BasicAuth`, deprecated since aiohttp 3.14: a
    DeprecationWarning on every request. The hook is duck-typed by the SDK (it calls
    `to_auth_strategy().get_auth_string()`), and the SDK logs no Authorization header.
    """

    def __init__(self, authorization: str) -> None:
        self._header = authorization

    def to_auth_strategy(self) -> _BasicAuthHeader:
        return self

    def get_auth_string(self) -> str:
        return self._header

    def requires_authentication(self) -> bool:
        return True


class TwilioProvider:
    """Sends SMS through Twilio's REST API and never raises for a provider failure.

    `send` is one aiohttp POST (messages_api: the SDK's request without the SDK's per-call
    cost); `fetch`, `find_sent` and `verify` go through the official SDK.
    """

    name = "twilio"
    can_look_up_messages = True

    def __init__(
        self,
        *,
        account_sid: str,
        auth_token: str,
        messaging_service_sid: str | None,
        from_number: str | None,
        api_base_url: str = "https://api.twilio.com",
        timeout_seconds: float = 10.0,
    ) -> None:
        _require_settings(account_sid, auth_token, messaging_service_sid, from_number)
        self._account_sid = account_sid
        self._auth_token = auth_token
        self._authorization = basic_authorization(account_sid, auth_token)
        self._default_sender = _sender_fields(messaging_service_sid or from_number or "")
        self._api_base_url = api_base_url
        self._timeout_seconds = timeout_seconds
        self._messages = MessagesApi(
            account_sid=account_sid,
            authorization=self._authorization,
            base_url=api_base_url,
            timeout_seconds=timeout_seconds,
        )
        self._http: AsyncTwilioHttpClient | None = None
        self._client: Any = None

    async def send(self, request: SendRequest) -> SendResult:
        form = create_form(self._create_fields(request))
        wire = Wire()
        try:
            with watching(wire):
                answer = await self._messages.create(form)
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            return _transport_result(exc, wire)
        return send_result(answer)

    async def fetch(self, provider_message_id: str) -> ProviderMessage | None:
        try:
            message = await self._call(
                lambda client: client.messages(provider_message_id).fetch_async()
            )
        except _CALL_FAILURES as exc:
            if _http_status(exc) == 404:
                return None
            raise _lookup_error("fetch a message", exc) from exc
        return _provider_message(message)

    async def find_sent(self, to: str, body: str, since: datetime) -> ProviderMessage | None:
        # The SDK formats datetimes with strftime and a literal "Z": hand it UTC.
        after = since.astimezone(UTC) if since.tzinfo else since.replace(tzinfo=UTC)
        try:
            messages = await self._call(
                lambda client: client.messages.list_async(
                    to=to, date_sent_after=after, limit=_FIND_SENT_LIMIT
                )
            )
        except _CALL_FAILURES as exc:
            raise _lookup_error("list messages", exc) from exc
        return _first_outbound_with_body(messages, body)

    async def verify(self) -> None:
        sid = self._account_sid
        try:
            await self._call(lambda client: client.api.v2010.accounts(sid).fetch_async())
        except _CALL_FAILURES as exc:
            if _http_status(exc) == 404:
                raise _credentials_error(exc) from exc
            raise _lookup_error("fetch the account", exc) from exc

    async def close(self) -> None:
        await self._messages.close()
        http, self._http, self._client = self._http, None, None
        if http is not None:
            await http.close()

    async def _call(self, call: Callable[[Any], Awaitable[_T]]) -> _T:
        """Run one SDK call under our timeout: the SDK's async client applies none."""
        client = self._sdk_client()
        async with asyncio.timeout(self._timeout_seconds):
            return await call(client)

    def _sdk_client(self) -> Any:
        """Build the SDK client on first use, inside the running loop (aiohttp needs one)."""
        if self._client is None:
            # max_retries=None keeps aiohttp_retry out: a retried POST would send a second SMS.
            self._http = AsyncTwilioHttpClient(trace_configs=[wire_tracing()], max_retries=None)
            client = Client(
                self._account_sid,
                self._auth_token,
                http_client=self._http,
                credential_provider=_BasicAuthHeader(self._authorization),
                # A non-empty mapping stops the SDK reading os.environ, where TWILIO_EDGE or
                # TWILIO_REGION would rewrite the host of our api_base_url.
                environment={"TWILIO_EDGE": "", "TWILIO_REGION": ""},
            )
            # Every 2010-04-01 URL is `client.api.base_url` + "/2010-04-01/...".
            client.api.base_url = self._api_base_url
            self._client = client
        return self._client

    def _create_fields(self, request: SendRequest) -> dict[str, str | int]:
        sender = _sender_fields(request.sender) if request.sender else self._default_sender
        fields: dict[str, str | int] = {"To": request.to, "Body": request.body, **sender}
        if request.status_callback_url:
            fields["StatusCallback"] = request.status_callback_url
        if request.validity_seconds is not None:
            low, high = VALIDITY_RANGE
            fields["ValidityPeriod"] = min(max(request.validity_seconds, low), high)
        return fields


def _require_settings(
    account_sid: str, auth_token: str, messaging_service_sid: str | None, from_number: str | None
) -> None:
    credentials = (account_sid, auth_token)
    missing = tuple(n for n, v in zip(CREDENTIAL_SETTINGS, credentials, strict=True) if not v)
    if missing:
        raise ProviderConfigError(
            f"Twilio needs {' and '.join(missing)} to be set", missing=missing
        )
    if not messaging_service_sid and not from_number:
        raise ProviderConfigError(
            "Twilio needs a sender: set TWILIO_MESSAGING_SERVICE_SID (preferred) or "
            "TWILIO_FROM_PHONE_NUMBER",
            missing=SENDER_SETTINGS,
        )


def _sender_fields(sender: str) -> dict[str, str]:
    """A Messaging Service SID starts with "MG"; anything else is a From number or ID."""
    if sender.startswith("MG"):
        return {"MessagingServiceSid": sender}
    return {"From": sender}


def _transport_result(exc: BaseException, wire: Wire) -> SendResult:
    """No answer to read: refused, reset, timed out (or a ValueError, as the SDK path had it)."""
    if isinstance(exc, ValueError):
        return SendResult(
            Outcome.AMBIGUOUS, error=ProviderError(f"Twilio's answer could not be read: {exc}")
        )
    return transport_failure("Twilio", exc, wire, _describe(exc))


def _provider_error(exc: Any) -> ProviderError:
    """Twilio's error as reported; the SDK keeps only parts of the body (no `more_info`)."""
    if isinstance(exc, TwilioServiceException):
        code = as_int(exc.code)
        return ProviderError(
            message=exc.detail or exc.title,
            code=code,
            more_info=exc.type or (more_info_url(code) if code else None),
            details={"errors": exc.errors} if exc.errors else None,
        )
    code = _real_code(exc)
    message = _SDK_MESSAGE_PREFIX.sub("", str(getattr(exc, "msg", "") or ""))
    details = getattr(exc, "details", None)
    return ProviderError(
        message=message or f"HTTP {_http_status(exc)} from Twilio",
        code=code,
        more_info=more_info_url(code) if code else None,
        details=details if isinstance(details, dict) else None,
    )


def _real_code(exc: Any) -> int | None:
    """The body's Twilio code; the SDK puts the HTTP status there when the body has none."""
    if not isinstance(exc, TwilioRestException | TwilioServiceException):
        return None
    code = as_int(exc.code)
    return None if code == _http_status(exc) else code


def _http_status(exc: BaseException) -> int | None:
    return as_int(getattr(exc, "status", None)) if isinstance(exc, TwilioException) else None


def _credentials_error(exc: BaseException) -> ProviderConfigError:
    """Names the settings to fix; the message never carries the token."""
    return ProviderConfigError(
        f"Twilio rejected the credentials (HTTP {_http_status(exc)}): check "
        "TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN (test credentials cannot fetch the account)",
        missing=CREDENTIAL_SETTINGS,
    )


def _lookup_error(action: str, exc: BaseException) -> Exception:
    """Bad credentials are a config error; anything else means Twilio gave no answer."""
    if _http_status(exc) in (401, 403) or _real_code(exc) == 20003:
        return _credentials_error(exc)
    return ConnectionError(f"Twilio could not {action}: the request {_describe(exc)}")


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError) and not isinstance(exc, aiohttp.ClientError):
        return "timed out"
    if isinstance(exc, TwilioRestException | TwilioServiceException):
        error = _provider_error(exc)
        return f"failed with HTTP {_http_status(exc)}, code {error.code}: {error.message}"
    return f"failed ({type(exc).__name__}: {exc})" if str(exc) else f"failed ({type(exc).__name__})"


def _first_outbound_with_body(messages: list[Any], body: str) -> ProviderMessage | None:
    for message in messages:
        if message.body == body and message.direction != "inbound":
            return _provider_message(message)
    return None


def _provider_message(message: Any) -> ProviderMessage:
    # An unknown (new) Twilio status counts as still in flight, so it is asked about again.
    status = our_status(str(message.status or "")) or Status.SENT
    return ProviderMessage(
        provider_message_id=str(message.sid),
        status=status,
        to=message.to,
        body=message.body,
        error=_message_error(message),
        price=message.price,
        price_unit=message.price_unit,
        created_at=message.date_created,
    )


def _message_error(message: Any) -> ProviderError | None:
    code = as_int(message.error_code)
    if code is None:
        return None
    return ProviderError(
        message=message.error_message or f"Twilio error {code}",
        code=code,
        more_info=more_info_url(code),
    )
