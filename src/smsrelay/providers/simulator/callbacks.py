"""Status callbacks: the signed form Twilio posts to a message's StatusCallback URL."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import aiohttp

from smsrelay.providers.simulator.config import SimulatorConfig
from smsrelay.providers.simulator.masking import logger, mask_number
from smsrelay.providers.simulator.state import CallbackRecord, SimulatedMessage, SimulatorState
from smsrelay.providers.simulator.tables import API_VERSION
from smsrelay.providers.twilio.signature import compute_signature

# Headers Twilio's webhook requests carry. Signature: https://www.twilio.com/docs/usage/webhooks/
# webhooks-security. The idempotency token identifies one event: a re-delivery repeats it.
SIGNATURE_HEADER = "X-Twilio-Signature"
IDEMPOTENCY_HEADER = "I-Twilio-Idempotency-Token"
USER_AGENT = "TwilioProxy/1.1"

# Final statuses whose SMS callback carries the carrier's done date (YYMMDDhhmm, UTC).
# Source: shared/vectors/twilio_webhooks.json status_callback.sms_mms_extra_params.
_DLR_STATUSES = frozenset({"delivered", "undelivered"})


@dataclass(frozen=True, slots=True)
class Callback:
    """One status event to post; a duplicate post reuses the same token."""

    params: dict[str, str]
    idempotency_token: str


def build_callback(message: SimulatedMessage, status: str, error_code: int | None) -> Callback:
    """The status event for `message` reaching `status`."""
    return Callback(callback_params(message, status, error_code), uuid.uuid4().hex)


def callback_params(
    message: SimulatedMessage, status: str, error_code: int | None
) -> dict[str, str]:
    """The form fields Twilio sends for a status change (twilio_webhooks.json status_callback)."""
    params = {
        "MessageSid": message.sid,
        "SmsSid": message.sid,
        "MessageStatus": status,
        "SmsStatus": status,
        "AccountSid": message.account_sid,
        "To": message.to,
        "ApiVersion": API_VERSION,
    }
    optional = {
        "From": message.from_,
        "MessagingServiceSid": message.messaging_service_sid,
        "ErrorCode": None if error_code is None else str(error_code),
        "RawDlrDoneDate": _dlr_done_date() if status in _DLR_STATUSES else None,
    }
    params.update({name: value for name, value in optional.items() if value is not None})
    return params


def _dlr_done_date() -> str:
    return datetime.now(UTC).strftime("%y%m%d%H%M")


class CallbackSender:
    """Posts signed callbacks over one client session, opened inside the running loop."""

    def __init__(self, config: SimulatorConfig, state: SimulatorState) -> None:
        self._config = config
        self._state = state
        self._session: aiohttp.ClientSession | None = None

    async def open(self) -> None:
        timeout = aiohttp.ClientTimeout(total=self._config.callback_timeout)
        self._session = aiohttp.ClientSession(timeout=timeout)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def post(self, url: str, callback: Callback) -> None:
        """Post once, as Twilio does; a failed post is recorded and logged, not retried."""
        status = await self._send(url, callback)
        self._state.callbacks.append(
            CallbackRecord(url, callback.params, callback.idempotency_token, status)
        )
        _log_post(callback, status)

    def headers(self, url: str, callback: Callback) -> dict[str, str]:
        signature = compute_signature(url, callback.params, self._config.auth_token)
        return {
            SIGNATURE_HEADER: signature,
            IDEMPOTENCY_HEADER: callback.idempotency_token,
            "User-Agent": USER_AGENT,
        }

    async def _send(self, url: str, callback: Callback) -> int | None:
        if self._session is None:
            raise RuntimeError("CallbackSender.open() was not awaited")
        headers = self.headers(url, callback)
        try:
            async with self._session.post(url, data=callback.params, headers=headers) as reply:
                await reply.read()
                return reply.status
        except (aiohttp.ClientError, TimeoutError):
            return None


def _log_post(callback: Callback, http_status: int | None) -> None:
    logger.info(
        "status callback posted",
        extra={
            "action": "simulator.callback",
            "sid": callback.params["MessageSid"],
            "status": callback.params["MessageStatus"],
            "to": mask_number(callback.params["To"]),
            "http_status": http_status,
        },
    )
