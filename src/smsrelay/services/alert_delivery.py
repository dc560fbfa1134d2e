"""Delivering alert rows: a signed JSON POST through the SSRF guard, or an email over SMTP.

Each try's outcome is recorded on the row: delivered, or the error and the next try after a
backoff (`domain.billing.retry_delay`), until `max_attempts` ends it as failed. A URL the
guard refuses fails at once (it will not become safe by waiting).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any
from urllib.parse import unquote, urlsplit

import aiohttp
import aiosmtplib
from pydantic import SecretStr
from sqlalchemy.engine import RowMapping

from smsrelay.config import SettingsError
from smsrelay.domain import billing
from smsrelay.logs import get_logger
from smsrelay.services import ssrf
from smsrelay.services.alerts import (
    ALERT_ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WEBHOOK,
    AlertNetwork,
    sign,
)
from smsrelay.services.secrets import SecretBox, SecretDecryptError, SecretKeysError
from smsrelay.store.alerts import DELIVERED, FAILED, AlertRepository
from smsrelay.store.database import Database

log = get_logger("smsrelay.alerts")
SUBJECTS = {"balance.low": "smsrelay: balance is low", "sms.failed": "smsrelay: an SMS failed"}
_SMTP_PORTS = {"smtp": 25, "smtps": 465}  # RFC 5321 §4.5.4.2 relay port; RFC 8314 §3.3


class DeliveryFailed(Exception):
    """One try did not deliver; `final` when trying again cannot help."""

    def __init__(self, message: str, *, final: bool = False) -> None:
        super().__init__(message)
        self.final = final


@dataclass(frozen=True, slots=True)
class SmtpTarget:
    hostname: str
    port: int
    use_tls: bool
    username: str | None
    password: str | None = field(repr=False)  # never in a repr, a log line or a traceback


def smtp_target(url: str | None) -> SmtpTarget | None:
    """SMTP_URL (`smtp://user:pass@host:port`, `smtps://` for TLS) parsed; None when unset."""
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme not in _SMTP_PORTS or not parts.hostname:
        raise SettingsError("SMTP_URL: must look like smtp://user:pass@host:port or smtps://…")
    try:
        port = parts.port or _SMTP_PORTS[parts.scheme]
    except ValueError:
        raise SettingsError("SMTP_URL: the port is not a number from 1 to 65535") from None
    return SmtpTarget(
        hostname=parts.hostname,
        port=port,
        use_tls=parts.scheme == "smtps",
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
    )


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class AlertDelivery:
    """Delivers due alert rows; owns one HTTP session (open it with `start`)."""

    db: Database
    network: AlertNetwork
    secret_keys: SecretStr | None
    smtp: SmtpTarget | None
    email_from: str
    max_attempts: int = 8
    lease: timedelta = timedelta(minutes=2)
    clock: Callable[[], datetime] = _utcnow
    session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        if self.session is None:
            self.session = aiohttp.ClientSession(trust_env=False)

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()
            self.session = None

    async def deliver_due(self, limit: int = 50) -> int:
        """Try every due alert once, side by side (all within one timeout, well inside the
        lease, so no other loop takes them meanwhile); how many were tried."""
        async with self.db.transaction() as connection:
            due = await AlertRepository(connection).claim_due(self.clock(), self.lease, limit)
        await asyncio.gather(*(self._deliver(alert) for alert in due))
        return len(due)

    async def _deliver(self, alert: RowMapping) -> None:
        async with self.db.reading() as connection:
            settings = await AlertRepository(connection).settings(alert["tenant_id"])
        try:
            if alert["channel"] == WEBHOOK:
                await self._post(alert, settings)
            else:
                await self._email(alert, settings)
        except DeliveryFailed as exc:
            await self._record_failure(alert, str(exc), exc.final)
            return
        await self._record(alert["id"], state=DELIVERED, delivered_at=self.clock(), last_error=None)
        log.info("alerts.delivered", **_fields(alert))

    async def _post(self, alert: RowMapping, settings: RowMapping | None) -> None:
        if settings is None or not settings["url"] or not settings["secret_encrypted"]:
            raise DeliveryFailed("no alert url is configured any more", final=True)
        body = json.dumps(alert["payload"], separators=(",", ":")).encode()
        timestamp = str(int(self.clock().timestamp()))
        headers = {
            "Content-Type": "application/json",
            ALERT_ID_HEADER: alert["id"],  # the same on every retry: receivers dedupe on it
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: sign(self._secret(settings["secret_encrypted"]), timestamp, body),
        }
        response = await self._fetch(settings["url"], body, headers)
        if not 200 <= response.status < 300:
            raise DeliveryFailed(f"the alert url answered {response.status}")

    async def _fetch(self, url: str, body: bytes, headers: dict[str, str]) -> ssrf.GuardedResponse:
        await self.start()
        assert self.session is not None
        network = self.network
        try:
            return await ssrf.fetch_guarded(
                self.session,
                "POST",
                url,
                body=body,
                headers=headers,
                timeout=network.timeout_seconds,
                max_bytes=network.max_bytes,
                allow_http=network.allow_http,
                resolver=network.resolver,
                allow_loopback_for_tests=network.allow_loopback_for_tests,
            )
        except ssrf.URLRefused as exc:
            raise DeliveryFailed(f"the alert url was refused: {exc}", final=True) from exc
        except ssrf.GuardError as exc:
            raise DeliveryFailed(str(exc)) from exc

    def _secret(self, encrypted: str) -> str:
        try:
            return SecretBox(self.secret_keys).decrypt(encrypted)
        except (SecretKeysError, SecretDecryptError) as exc:
            raise DeliveryFailed(f"the signing secret cannot be read: {exc}") from exc

    async def _email(self, alert: RowMapping, settings: RowMapping | None) -> None:
        if settings is None or not settings["email"]:
            raise DeliveryFailed("no alert email is configured any more", final=True)
        if self.smtp is None:
            raise DeliveryFailed("SMTP_URL is not set; alerts cannot be emailed")
        message = _email_message(alert["payload"], self.email_from, settings["email"])
        try:
            await aiosmtplib.send(
                message,
                hostname=self.smtp.hostname,
                port=self.smtp.port,
                username=self.smtp.username,
                password=self.smtp.password,
                use_tls=self.smtp.use_tls,
                timeout=self.network.timeout_seconds,
            )
        except (aiosmtplib.SMTPException, OSError) as exc:
            reason = f"{type(exc).__name__}: {exc}"[:300]
            raise DeliveryFailed(f"the SMTP server refused or failed ({reason})") from exc

    async def _record_failure(self, alert: RowMapping, error: str, final: bool) -> None:
        attempts = int(alert["attempts"])
        if final or attempts >= self.max_attempts:
            await self._record(alert["id"], state=FAILED, last_error=error)
            log.warning("alerts.delivery_failed", error=error, attempts=attempts, **_fields(alert))
            return
        delay = timedelta(seconds=billing.retry_delay(attempts))
        await self._record(alert["id"], next_attempt_at=self.clock() + delay, last_error=error)
        log.info("alerts.delivery_retry", error=error, attempts=attempts, **_fields(alert))

    async def _record(self, alert_id: str, **values: Any) -> None:
        async with self.db.transaction() as connection:
            await AlertRepository(connection).finish(alert_id, **values)


def _email_message(payload: dict[str, Any], sender: str, recipient: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = recipient
    message["Subject"] = SUBJECTS.get(payload["type"], "smsrelay alert")
    lines = [f"{key}: {value}" for key, value in payload.items()]
    message.set_content("\n".join(lines) + "\n")
    return message


def _fields(alert: RowMapping) -> dict[str, Any]:
    return {
        "alert_id": alert["id"],
        "kind": alert["kind"],
        "channel": alert["channel"],
        "tenant_id": alert["tenant_id"],
    }
