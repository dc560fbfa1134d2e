"""The development-only manual test send: synchronous, logged, rate limited by the caller."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from smsrelay.domain import phones
from smsrelay.domain.ids import new_id
from smsrelay.logs import get_logger
from smsrelay.providers.base import Outcome, Provider, SendRequest, SendResult
from smsrelay.services.errors import InvalidRequest, ServiceError
from smsrelay.store.database import Database
from smsrelay.store.notification_logs import add_log

LOG_KEY = "manual-test-sms"
CHANNEL = "sms"
log = get_logger("smsrelay.notifications")


class ProviderRejected(ServiceError):
    """The provider refused the message for a reason the caller can fix (→ 422)."""

    code = "provider_rejected"


class ProviderFailed(ServiceError):
    """The provider failed or could not be reached (→ 502)."""

    code = "provider_failed"


@dataclass(frozen=True, slots=True)
class TestSendResult:
    log_id: str
    provider_message_id: str
    to: str
    status: str


async def send_test_sms(
    db: Database,
    provider: Provider,
    *,
    to: str,
    message: str,
    default_region: str | None = None,
    tenant_id: str | None = None,
) -> TestSendResult:
    """Send now through the provider, write a notification log row, and report the result."""
    number = _validate(to, message, default_region)
    result = await provider.send(SendRequest(to=number, body=message))
    log_id = new_id("log")
    context = {
        "logId": log_id,
        "tenantId": tenant_id,
        "templateKey": LOG_KEY,
        "channel": CHANNEL,
        "recipient": number,
    }
    await _persist(db, _log_row(log_id, tenant_id, number, provider.name, result), context)
    if not result.accepted or result.provider_message_id is None:
        _raise_failure(result, context)
    assert result.provider_message_id is not None
    log.info("notifications.sms.sent", **context, providerMessageId=result.provider_message_id)
    return TestSendResult(log_id, result.provider_message_id, number, "sent")


def _validate(to: str, message: str, default_region: str | None) -> str:
    try:
        number = phones.normalize(to, default_region).e164
    except phones.InvalidPhoneNumber as exc:
        raise InvalidRequest("to", str(exc)) from None
    if not message.strip():
        raise InvalidRequest("message", "must not be empty")
    return number


def _log_row(
    log_id: str, tenant_id: str | None, number: str, provider: str, result: SendResult
) -> dict[str, Any]:
    error = result.error
    return {
        "id": log_id,
        "tenant_id": tenant_id,
        "log_key": LOG_KEY,
        "channel": CHANNEL,
        "recipient": number,
        "status": "sent" if result.accepted else "failed",
        "provider": provider,
        "provider_message_id": result.provider_message_id,
        "error_code": None if error is None or error.code is None else str(error.code),
        "error_message": error.message if error else None,
        "template_key": LOG_KEY,
        "created_at": datetime.now(UTC),
    }


async def _persist(db: Database, row: dict[str, Any], context: dict[str, Any]) -> None:
    """A lost log row must not turn a sent SMS into an error: log it loudly instead."""
    try:
        async with db.transaction() as connection:
            await add_log(connection, row)
    except Exception as exc:  # any storage failure; the SMS outcome still stands
        log.error("notifications.sms.log_persist_failed", **context, error=type(exc).__name__)


def _raise_failure(result: SendResult, context: dict[str, Any]) -> None:
    error = result.error
    details = {
        "outcome": result.outcome.value,
        "providerErrorCode": error.code if error else None,
        "providerMoreInfo": error.more_info if error else None,
        "providerDetails": error.details if error else None,
        "logId": context["logId"],
    }
    log.warning(
        "notifications.sms.delivery_failed",
        **context,
        providerErrorCode=details["providerErrorCode"],
        providerMoreInfo=details["providerMoreInfo"],
        providerDetails=details["providerDetails"],
    )
    message = error.message if error else "the provider did not accept the message"
    if result.outcome in (Outcome.PERMANENT, Outcome.OPTED_OUT):
        raise ProviderRejected(f"provider rejected the message: {message}", details)
    raise ProviderFailed(f"provider failed: {message}", details)
