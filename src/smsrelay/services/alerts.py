"""A tenant's alert settings and the alerts they cause: low balance, and failed SMS.

Alerts are rows written in the transaction of the event that caused them (a debit crossing
the threshold; `services/balances.settle_finished` finding a failed message), one row per
channel, so none is lost or sent twice; `services/alert_delivery.py` delivers them.

Errors (beside services/errors.py):
    SigningUnavailable (409)  a webhook URL needs SMSRELAY_SECRET_KEYS to store its secret
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import SecretStr
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from smsrelay.domain import billing
from smsrelay.domain.ids import new_id
from smsrelay.logs import mask_phone
from smsrelay.services import ssrf
from smsrelay.services.errors import Conflict, InvalidRequest
from smsrelay.services.secrets import SecretBox, SecretKeysError
from smsrelay.store.alerts import PENDING, AlertRepository
from smsrelay.store.balances import BalanceRepository
from smsrelay.store.database import Database

SIGNATURE_HEADER = "X-Smsrelay-Signature"
TIMESTAMP_HEADER = "X-Smsrelay-Timestamp"
ALERT_ID_HEADER = "X-Smsrelay-Alert-Id"
LOW_BALANCE, FAILED_SMS = "low_balance", "failed_sms"
WEBHOOK, EMAIL = "webhook", "email"
_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]+\.[^@\s]+")


class SigningUnavailable(Conflict):
    code = "secret_keys_unset"


@dataclass(frozen=True, slots=True)
class AlertNetwork:
    """How alert URLs are checked and fetched: https only unless `allow_http` (development).

    `allow_loopback_for_tests` is for tests that run a local server; no setting turns it on.
    """

    allow_http: bool
    allow_loopback_for_tests: bool = False
    resolver: ssrf.Resolver = ssrf.resolve_host
    timeout_seconds: float = 10.0
    max_bytes: int = 64 * 1024


@dataclass(frozen=True, slots=True)
class AlertSettingsInput:
    url: str | None = None
    email: str | None = None
    low_balance_threshold: str | None = None
    hard_stop: bool = False
    failed_sms: bool = False
    rotate_secret: bool = False


@dataclass(frozen=True, slots=True)
class AlertSettingsView:
    url: str | None
    email: str | None
    low_balance_threshold: str | None
    hard_stop: bool
    failed_sms: bool
    has_signing_secret: bool
    signing_secret: str | None  # only in the answer that made it; never again
    updated_at: datetime | None


async def save_alert_settings(
    db: Database,
    tenant_id: str,
    given: AlertSettingsInput,
    now: datetime,
    *,
    network: AlertNetwork,
    secret_keys: SecretStr | None,
    email_enabled: bool,
) -> AlertSettingsView:
    """Validate and replace the tenant's alert settings; a new webhook secret is shown once."""
    url = await _checked_url(given.url, network)
    email = _checked_email(given.email, email_enabled)
    threshold = _threshold(given.low_balance_threshold)
    if given.failed_sms and url is None and email is None:
        raise InvalidRequest("failedSms", "needs a url or an email to send the alerts to")
    async with db.transaction() as connection:
        repo = AlertRepository(connection)
        current = await repo.settings(tenant_id)
        kept = None if current is None or url is None else current["secret_encrypted"]
        secret, encrypted = _signing_secret(url, kept, given.rotate_secret, secret_keys)
        values = {
            "url": url,
            "email": email,
            "secret_encrypted": encrypted,
            "low_balance_threshold_micros": threshold,
            "hard_stop": int(given.hard_stop),
            "failed_sms": int(given.failed_sms),
            "updated_at": now,
        }
        await repo.save_settings(tenant_id, values)
        await BalanceRepository(connection).rearm_low_alert(tenant_id, threshold)
    return _view(values, secret)


async def read_alert_settings(db: Database, tenant_id: str) -> AlertSettingsView:
    async with db.reading() as connection:
        row = await AlertRepository(connection).settings(tenant_id)
    if row is None:
        return AlertSettingsView(None, None, None, False, False, False, None, None)
    return _view(row, None)


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """`sha256=<hex>` of HMAC-SHA256 over `timestamp.body`, as sent in X-Smsrelay-Signature."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def wants_failed_sms(state: Mapping[Any, Any]) -> bool:
    """True when the tenant asked for failed-SMS alerts and has somewhere to send them."""
    return bool(state["failed_sms"]) and bool(state["url"] or state["email"])


async def queue_low_balance(
    connection: AsyncConnection, state: Mapping[Any, Any], balance: int, now: datetime
) -> int:
    """Alert rows for a balance that just went below the threshold (one per channel)."""
    payload = {
        "type": "balance.low",
        "tenantId": state["tenant_id"],
        "balance": billing.format_micros(balance),
        "currency": state["currency"],
        "lowBalanceThreshold": billing.format_micros(state["threshold"]),
        "occurredAt": now.isoformat(),
    }
    key = f"{LOW_BALANCE}:{new_id('low')}"
    return await _queue(connection, state, LOW_BALANCE, key, payload, now)


async def queue_failed_sms(connection: AsyncConnection, watched: RowMapping, now: datetime) -> int:
    """Alert rows for a message that ended failed or undelivered, once per message."""
    settings = await AlertRepository(connection).settings(watched["tenant_id"])
    if settings is None or not wants_failed_sms(settings):
        return 0
    payload = {
        "type": "sms.failed",
        "tenantId": watched["tenant_id"],
        "outboxId": watched["message_id"],
        "recipient": mask_phone(watched["recipient"]),
        "status": watched["status"],
        "errorCode": watched["error_code"],
        "occurredAt": watched["updated_at"].isoformat(),
    }
    key = f"{FAILED_SMS}:{watched['message_id']}"
    return await _queue(connection, settings, FAILED_SMS, key, payload, now)


async def _queue(
    connection: AsyncConnection,
    destinations: Mapping[Any, Any],
    kind: str,
    key: str,
    payload: dict[str, Any],
    now: datetime,
) -> int:
    channels = [c for c, field in ((WEBHOOK, "url"), (EMAIL, "email")) if destinations[field]]
    rows = [
        {
            "id": new_id("alr"),
            "tenant_id": payload["tenantId"],
            "kind": kind,
            "channel": channel,
            "dedupe_key": f"{key}:{channel}",
            "payload": payload,
            "state": PENDING,
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
        }
        for channel in channels
    ]
    return await AlertRepository(connection).add_once(rows)


async def _checked_url(url: str | None, network: AlertNetwork) -> str | None:
    if url is None or not url.strip():
        return None
    try:
        await ssrf.check_url(
            url,
            allow_http=network.allow_http,
            resolver=network.resolver,
            allow_loopback_for_tests=network.allow_loopback_for_tests,
        )
    except ssrf.URLRefused as exc:
        raise InvalidRequest(
            "url", f"{exc}; give a public https URL", {"refused": exc.kind}
        ) from None
    except ssrf.HostNotResolved as exc:
        raise InvalidRequest("url", f"{exc}; give a URL whose host resolves") from None
    return url.strip()


def _checked_email(email: str | None, enabled: bool) -> str | None:
    if email is None or not email.strip():
        return None
    if not _EMAIL.fullmatch(email.strip()):
        raise InvalidRequest("email", f"{email!r} is not an email address such as ops@example.com")
    if not enabled:
        raise InvalidRequest(
            "email",
            "this server cannot send email (SMTP_URL is not set); ask the operator to set "
            "SMTP_URL, or leave email out and use a url",
        )
    return email.strip()


def _threshold(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        return billing.to_micros(billing.parse_amount(text, allow_zero=True))
    except billing.InvalidAmount as exc:
        raise InvalidRequest("lowBalanceThreshold", str(exc)) from None


def _signing_secret(
    url: str | None, kept: str | None, rotate: bool, keys: SecretStr | None
) -> tuple[str | None, str | None]:
    """(the new secret to show once or None, what to store) for the webhook URL."""
    if url is None:
        return None, None
    if kept is not None and not rotate:
        return None, kept
    try:
        box = SecretBox(keys)
    except SecretKeysError as exc:
        raise SigningUnavailable(
            f"webhook alerts are signed with a secret stored encrypted, and {exc}"
        ) from None
    secret = secrets.token_urlsafe(32)
    return secret, box.encrypt(secret)


def _view(values: Mapping[Any, Any], secret: str | None) -> AlertSettingsView:
    threshold = values["low_balance_threshold_micros"]
    return AlertSettingsView(
        url=values["url"],
        email=values["email"],
        low_balance_threshold=None if threshold is None else billing.format_micros(threshold),
        hard_stop=bool(values["hard_stop"]),
        failed_sms=bool(values["failed_sms"]),
        has_signing_secret=values["secret_encrypted"] is not None,
        signing_secret=secret,
        updated_at=values["updated_at"],
    )
