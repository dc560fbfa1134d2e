"""Typed settings read once from the environment (and `.env`), with secrets that mask themselves."""

from __future__ import annotations

from typing import Literal

import limits
import phonenumbers
from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite:///./var/smsrelay.db"


class SettingsError(Exception):
    """A setting is missing or malformed; the message names the variable."""


class Settings(BaseSettings):
    """Every setting smsrelay reads. Environment variable = prefix + field name, upper case."""

    model_config = SettingsConfigDict(
        env_prefix="SMSRELAY_", env_file=".env", extra="ignore", populate_by_name=True
    )

    database_url: str = DEFAULT_DATABASE_URL
    env: Literal["development", "production"] = "development"
    public_url: str = "http://127.0.0.1:8000"
    provider: Literal["simulator", "twilio", "msg91"] | None = None
    secret_keys: SecretStr | None = None
    redis_url: str | None = None

    default_region: str | None = None
    default_currency: str = "USD"
    max_message_chars: int = Field(default=1600, ge=1)
    max_message_segments: int | None = Field(default=None, ge=1)
    resend_cap: int = Field(default=3, ge=1)
    dispatch_batch_size: int = Field(default=50, ge=1)
    dispatch_concurrency: int = Field(default=32, ge=1)
    dispatch_poll_seconds: float = Field(default=0.2, gt=0)
    lease_seconds: float = Field(default=60.0, gt=0)
    provider_timeout_seconds: float = Field(default=10.0, gt=0)
    simulator_port: int = Field(default=0, ge=0, le=65535)
    simulator_step_delay: float = Field(default=0.05, ge=0)
    test_sms_limit: str = "3/5minute"
    api_key_rate_limit: str = "100/second"
    reconcile_after_seconds: float = Field(default=5.0, gt=0)
    status_check_after_seconds: float = Field(default=600.0, gt=0)
    max_attempts: int = Field(default=5, ge=1)
    # Bulk sends (docs/bulk.md): recipients written to the outbox per expander transaction.
    bulk_chunk_size: int = Field(default=1000, ge=1, le=10_000)
    # Sender pacing (docs/pacing.md): SENDER=SEGMENTS_PER_SECOND,... for any provider, the
    # window guard (a 1 s budget spread over 1 s + guard), how late after its slot a send may
    # be written (half of it at the gate), and how far ahead a worker books.
    sender_throughput: str = ""
    pacing_guard_seconds: float = Field(default=0.0, ge=0, le=0.5)
    pacing_tolerance_seconds: float = Field(default=0.2, gt=0, le=0.5)
    pacing_horizon_seconds: float = Field(default=0.5, gt=0, le=60)
    pacing_trace: bool = False  # log each paced send's slot and write moment (pacing.sent)
    # Balance alerts (docs/balances-and-alerts.md): delivery loop pace, tries, timeout, sender.
    alert_poll_seconds: float = Field(default=1.0, gt=0)
    alert_max_attempts: int = Field(default=8, ge=1)
    alert_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    alert_email_from: str = Field(default="smsrelay@localhost", min_length=3, max_length=320)

    twilio_account_sid: str | None = Field(default=None, alias="TWILIO_ACCOUNT_SID")
    twilio_auth_token: SecretStr | None = Field(default=None, alias="TWILIO_AUTH_TOKEN")
    twilio_messaging_service_sid: str | None = Field(
        default=None, alias="TWILIO_MESSAGING_SERVICE_SID"
    )
    twilio_from_phone_number: str | None = Field(default=None, alias="TWILIO_FROM_PHONE_NUMBER")
    twilio_status_callback_url: str | None = Field(default=None, alias="TWILIO_STATUS_CALLBACK_URL")
    twilio_api_base_url: str = Field(default="https://api.twilio.com", alias="TWILIO_API_BASE_URL")

    msg91_auth_key: SecretStr | None = Field(default=None, alias="MSG91_AUTH_KEY")
    msg91_sender_id: str | None = Field(default=None, alias="MSG91_SENDER_ID")
    msg91_dlt_entity_id: str | None = Field(default=None, alias="MSG91_DLT_ENTITY_ID")
    msg91_template_id: str | None = Field(default=None, alias="MSG91_TEMPLATE_ID")
    msg91_api_base_url: str = Field(default="https://control.msg91.com", alias="MSG91_API_BASE_URL")
    # MSG91 does not sign its delivery reports: the webhook URL carries this secret instead.
    msg91_webhook_token: SecretStr | None = None

    # A URL that may carry the SMTP password: masked like every other secret.
    smtp_url: SecretStr | None = Field(default=None, alias="SMTP_URL")

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        if not value.startswith(("sqlite", "postgresql", "postgres://")):
            raise ValueError("must start with sqlite:/// or postgresql://")
        return value

    @field_validator("sender_throughput")
    @classmethod
    def _sender_rates(cls, value: str) -> str:
        from smsrelay.domain.throughput import parse_overrides  # checks each entry

        parse_overrides(value)
        return value

    @field_validator("test_sms_limit", "api_key_rate_limit")
    @classmethod
    def _limit_rule(cls, value: str) -> str:
        try:
            limits.parse(value)
        except ValueError:
            raise ValueError("must be a rate such as 3/5minute") from None
        return value

    @field_validator("smtp_url")
    @classmethod
    def _smtp_url(cls, value: SecretStr | None) -> SecretStr | None:
        url = value.get_secret_value().strip() if value is not None else ""
        if not url:
            return None
        if not url.startswith(("smtp://", "smtps://")):
            raise ValueError("must look like smtp://user:pass@host:port (smtps:// for TLS)")
        return SecretStr(url)

    @field_validator("default_region")
    @classmethod
    def _known_region(cls, value: str | None) -> str | None:
        if value is None:
            return None
        region = value.strip().upper()
        if region not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError("must be an ISO 3166 region code such as US, GB or IN")
        return region

    @field_validator("secret_keys")
    @classmethod
    def _fernet_keys(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().strip():
            return None
        if value is not None:
            from smsrelay.services.secrets import SecretBox  # checks each key's format

            SecretBox(value)
        return value

    @field_validator("public_url", "twilio_api_base_url", "msg91_api_base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/")

    @property
    def effective_provider(self) -> str:
        """Explicit provider, else Twilio when its credentials are set, else the simulator."""
        if self.provider:
            return self.provider
        has_twilio = self.twilio_account_sid and self.twilio_auth_token
        if self.env == "production" or has_twilio:
            return "twilio"
        return "simulator"

    @property
    def msg91_configured(self) -> bool:
        """True when every MSG91 setting a send needs is present (not yet checked for shape)."""
        return all(
            (
                self.msg91_auth_key,
                self.msg91_sender_id,
                self.msg91_dlt_entity_id,
                self.msg91_template_id,
            )
        )

    @property
    def is_development(self) -> bool:
        return self.env == "development"

    @property
    def status_callback_url(self) -> str:
        """Where providers post delivery status: explicit, else derived from the public URL."""
        return self.twilio_status_callback_url or f"{self.public_url}/api/webhooks/twilio/status"


_ENV_NAMES = {
    name: (field.alias or f"SMSRELAY_{name.upper()}")
    for name, field in Settings.model_fields.items()
}


def load_settings(**overrides: object) -> Settings:
    """Read settings; a bad value raises `SettingsError` naming the environment variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = [_describe(error) for error in exc.errors()]
        raise SettingsError("invalid settings: " + "; ".join(problems)) from None


def _describe(error: ErrorDetails) -> str:
    location = error["loc"]
    name = str(location[0]) if location else "?"
    variable = _ENV_NAMES.get(name, name.upper())
    return f"{variable}: {error['msg']}"
