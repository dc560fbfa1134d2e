"""SQLAlchemy table definitions: the single source of the schema that migrations create."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        utc = _utc(value)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def bind_processor(self, dialect: Dialect) -> Any:
        """On SQLite, the text SQLAlchemy's SQLite DATETIME would store, spelled in one step
        (half the cost of `process_bind_param` and then DATETIME's formatting; the status
        webhook writes three per callback). Tested equal to the two steps."""
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)
        return _sqlite_text

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _sqlite_text(value: datetime | None) -> str | None:
    """`2026-11-29 16:57:27.091205`: the UTC time, naive, to the microsecond."""
    return None if value is None else _utc(value).isoformat(" ", "microseconds")[:-6]


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("naive datetime given; smsrelay stores UTC-aware times only")
    return value.astimezone(UTC)


metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

ID = String(40)
TS = UTCDateTime()
# Integer for SQLite's rowid alias, BigInteger on PostgreSQL.
SERIAL = BigInteger().with_variant(Integer(), "sqlite")

tenants = Table(
    "tenants",
    metadata,
    Column("id", ID, primary_key=True),
    Column("name", String(200), nullable=False),
    Column("created_at", TS, nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", ID, primary_key=True),
    Column("tenant_id", ID, ForeignKey("tenants.id"), nullable=False, index=True),
    Column("prefix", String(32), nullable=False, unique=True),
    Column("key_hash", String(128), nullable=False),
    Column("name", String(200), nullable=False),
    Column("created_at", TS, nullable=False),
    Column("revoked_at", TS),
    Column("scopes", String(64), nullable=False, server_default="send read admin"),
    Column("expires_at", TS),
    Column("last_used_at", TS),
)

messages = Table(
    "messages",
    metadata,
    Column("id", ID, primary_key=True),
    Column("tenant_id", ID, ForeignKey("tenants.id"), nullable=False),
    Column("user_id", ID),
    Column("recipient", String(32), nullable=False),
    Column("body", Text, nullable=False),
    Column("sender_id", String(64)),
    Column("provider", String(32), nullable=False),
    Column("provider_message_id", String(64)),
    Column("category", String(16), nullable=False),
    Column("encoding", String(8), nullable=False),
    Column("segments", Integer, nullable=False),
    Column("cost_per_unit", String(24), nullable=False),
    Column("total_cost", String(24), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("status", String(16), nullable=False),
    Column("created_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
    Column("sent_at", TS),
    Column("last_attempt_at", TS),
    Column("delivered_at", TS),
    Column("scheduled_at", TS),
    Column("expires_at", TS),
    Column("next_attempt_at", TS, nullable=False),
    Column("lease_owner", String(64)),
    Column("lease_expires_at", TS),
    Column("needs_reconcile", Integer, nullable=False, default=0),
    Column("attempt_count", Integer, nullable=False, default=0),
    Column("retry_count", Integer, nullable=False, default=0),
    Column("resend_count", Integer, nullable=False, default=0, server_default="0"),
    Column("status_checked_at", TS),
    Column("error_code", String(32)),
    Column("error_message", Text),
    Column("error_more_info", String(500)),
    Column("error_details", JSON),
    Column("tags", JSON, nullable=False),
    Column("custom_data", JSON, nullable=False),
    Column("template_key", String(200)),
    # What the provider billed (absolute value, a decimal string), once it reports it (0005).
    Column("provider_price", String(24)),
    Column("provider_price_unit", String(3)),
    Index("ix_messages_tenant_created", "tenant_id", "created_at", "id"),
    Index("ix_messages_dispatch", "status", "next_attempt_at"),
    Index("ix_messages_lease", "status", "lease_expires_at"),
    Index("ix_messages_provider_message_id", "provider_message_id"),
    Index("ix_messages_tenant_recipient", "tenant_id", "recipient"),
)

message_tags = Table(
    "message_tags",
    metadata,
    Column("message_id", ID, ForeignKey("messages.id"), primary_key=True),
    Column("tag", String(100), primary_key=True),
    Column("tenant_id", ID, nullable=False),
    Index("ix_message_tags_tenant_tag", "tenant_id", "tag"),
)

message_events = Table(
    "message_events",
    metadata,
    Column("id", SERIAL, primary_key=True, autoincrement=True),
    Column("message_id", ID, ForeignKey("messages.id"), nullable=False, index=True),
    Column("created_at", TS, nullable=False),
    Column("kind", String(40), nullable=False),
    Column("from_status", String(16)),
    Column("to_status", String(16)),
    Column("dedupe_key", String(200)),
    Column("data", JSON, nullable=False),
    UniqueConstraint("message_id", "dedupe_key"),
)

unmatched_callbacks = Table(
    "unmatched_callbacks",
    metadata,
    Column("id", SERIAL, primary_key=True, autoincrement=True),
    Column("provider_message_id", String(64), nullable=False, index=True),
    Column("dedupe_key", String(200), nullable=False, unique=True),
    Column("received_at", TS, nullable=False),
    Column("payload", JSON, nullable=False),
)

notification_logs = Table(
    "notification_logs",
    metadata,
    Column("id", ID, primary_key=True),
    Column("tenant_id", ID),
    Column("log_key", String(100), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("recipient", String(32), nullable=False),
    Column("status", String(16), nullable=False),
    Column("provider", String(32), nullable=False),
    Column("provider_message_id", String(64)),
    Column("error_code", String(32)),
    Column("error_message", Text),
    Column("template_key", String(200)),
    Column("created_at", TS, nullable=False),
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("tenant_id", ID, ForeignKey("tenants.id"), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("request_hash", String(64), nullable=False),
    Column("state", String(16), nullable=False),
    Column("response_status", Integer),
    Column("response_body", JSON),
    Column("created_at", TS, nullable=False),
    Column("expires_at", TS, nullable=False, index=True),
)

# --- Consent (migration 0003): ledger, suppressions, STOP holds, inbound messages, settings ---

# Append-only evidence: database triggers refuse UPDATE and DELETE (see migration 0003).
consent_records = Table(
    "consent_records",
    metadata,
    Column("seq", SERIAL, primary_key=True, autoincrement=True),
    Column("id", ID, nullable=False, unique=True),
    Column("tenant_id", ID, ForeignKey("tenants.id"), nullable=False),
    Column("phone", String(32), nullable=False),
    Column("status", String(24), nullable=False),
    Column("category", String(16)),
    Column("source", String(200), nullable=False),
    Column("method", String(16), nullable=False),
    Column("consent_text", Text, nullable=False),
    Column("ip", String(64)),
    Column("user_agent", String(500)),
    Column("occurred_at", TS, nullable=False),
    Column("recorded_at", TS, nullable=False),
    Column("recorded_by", String(64)),
    Column("evidence", JSON, nullable=False),
    Index("ix_consent_records_tenant_phone", "tenant_id", "phone", "seq"),
    Index("ix_consent_records_tenant_recorded", "tenant_id", "recorded_at"),
)

suppressions = Table(
    "suppressions",
    metadata,
    Column("tenant_id", ID, ForeignKey("tenants.id"), primary_key=True),
    Column("phone", String(32), primary_key=True),
    Column("reason", String(24), nullable=False),
    Column("note", Text),
    Column("source_ref", String(64)),
    Column("created_at", TS, nullable=False),
    Column("created_by", String(64)),
    Index("ix_suppressions_tenant_created", "tenant_id", "created_at"),
)

# A STOP being processed: blocks sends at once while sends already in flight finish.
opt_out_holds = Table(
    "opt_out_holds",
    metadata,
    Column("tenant_id", ID, ForeignKey("tenants.id"), primary_key=True),
    Column("phone", String(32), primary_key=True),
    Column("created_at", TS, nullable=False),
)

inbound_messages = Table(
    "inbound_messages",
    metadata,
    Column("id", ID, primary_key=True),
    Column("provider_message_id", String(64), nullable=False, unique=True),
    Column("tenant_id", ID, ForeignKey("tenants.id")),
    Column("from_phone", String(32), nullable=False),
    Column("to_phone", String(32)),
    Column("body", Text, nullable=False),
    Column("keyword", String(16), nullable=False),
    Column("opt_out_type", String(16)),
    Column("reply", Text),
    Column("received_at", TS, nullable=False),
    Column("params", JSON, nullable=False),
    Index("ix_inbound_messages_tenant_received", "tenant_id", "received_at", "id"),
)

tenant_settings = Table(
    "tenant_settings",
    metadata,
    Column("tenant_id", ID, ForeignKey("tenants.id"), primary_key=True),
    Column("opt_out_reply", Text),
    Column("opt_in_reply", Text),
    Column("help_reply", Text),
    Column("quiet_start", String(5)),
    Column("quiet_end", String(5)),
    Column("inbound_default", Integer, nullable=False, default=0),
    Column("updated_at", TS, nullable=False),
)

# Which tenant last texted a number (inbound ownership) without knowing the tenant first.
Index("ix_messages_recipient_created", messages.c.recipient, messages.c.created_at)

# --- Prices (migration 0005): a tenant's own price per segment, overriding the shipped table ---

tenant_prices = Table(
    "tenant_prices",
    metadata,
    Column("tenant_id", ID, ForeignKey("tenants.id"), primary_key=True),
    Column("provider", String(32), primary_key=True),
    Column("country", String(2), primary_key=True),
    Column("per_segment", String(24), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("source", String(200), nullable=False),
    Column("updated_at", TS, nullable=False),
)

# --- Balances and alerts (migration 0007): credit balance, its ledger, alert settings, alerts ---

# A tenant is metered only once it has an account (the operator's first credit creates it).
# Amounts are whole millionths of `currency` (see domain/billing.py).
balance_accounts = Table(
    "balance_accounts",
    metadata,
    Column("tenant_id", ID, ForeignKey("tenants.id"), primary_key=True),
    Column("currency", String(3), nullable=False),
    Column("balance_micros", BigInteger, nullable=False),
    # 1 once a low-balance alert went out, 0 again when the balance is back at the threshold.
    Column("low_alerted", Integer, nullable=False, default=0),
    Column("created_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
)

# One row per movement; (message, kind, round) is unique so nothing is debited or refunded
# twice. `send_round` is 0 for the first send and the resend number after that.
balance_ledger = Table(
    "balance_ledger",
    metadata,
    Column("id", SERIAL, primary_key=True, autoincrement=True),
    Column("tenant_id", ID, ForeignKey("tenants.id"), nullable=False),
    Column("kind", String(8), nullable=False),
    Column("message_id", ID),
    Column("send_round", Integer),
    Column("amount_micros", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("note", Text),
    Column("created_at", TS, nullable=False),
    UniqueConstraint("message_id", "kind", "send_round"),
    Index("ix_balance_ledger_tenant_id", "tenant_id", "id"),
)

# Messages whose ending still needs looking at (a refund, a failed-SMS alert); removed once done.
balance_watch = Table(
    "balance_watch",
    metadata,
    Column("message_id", ID, ForeignKey("messages.id"), primary_key=True),
    Column("tenant_id", ID, nullable=False),
    Column("send_round", Integer, nullable=False),
    Column("debited", Integer, nullable=False),
    Column("created_at", TS, nullable=False),
)

alert_settings = Table(
    "alert_settings",
    metadata,
    Column("tenant_id", ID, ForeignKey("tenants.id"), primary_key=True),
    Column("url", String(2000)),
    Column("email", String(320)),
    Column("secret_encrypted", Text),  # HMAC signing secret, Fernet-encrypted (SecretBox)
    Column("low_balance_threshold_micros", BigInteger),
    Column("hard_stop", Integer, nullable=False, default=0),
    Column("failed_sms", Integer, nullable=False, default=0),
    Column("updated_at", TS, nullable=False),
)

# An alert to deliver on one channel (webhook or email), written with the event that caused it.
alerts = Table(
    "alerts",
    metadata,
    Column("id", ID, primary_key=True),
    Column("tenant_id", ID, ForeignKey("tenants.id"), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("channel", String(8), nullable=False),
    Column("dedupe_key", String(200), nullable=False, unique=True),
    Column("payload", JSON, nullable=False),
    Column("state", String(12), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", TS, nullable=False),
    Column("last_error", Text),
    Column("created_at", TS, nullable=False),
    Column("delivered_at", TS),
    Index("ix_alerts_state_next", "state", "next_attempt_at"),
    Index("ix_alerts_tenant_created", "tenant_id", "created_at"),
)

# --- Provider configs (migration 0006): a tenant's own provider credentials, secrets encrypted ---

tenant_provider_configs = Table(
    "tenant_provider_configs",
    metadata,
    Column("id", ID, primary_key=True),
    Column("tenant_id", ID, ForeignKey("tenants.id"), nullable=False),
    Column("provider", String(32), nullable=False),
    # The account the provider's callbacks name (Twilio's AccountSid), to find the signing key.
    Column("account_id", String(64), index=True),
    Column("settings", JSON, nullable=False),  # the non-secret fields, by their API names
    Column("secrets", Text, nullable=False),  # Fernet token (SecretBox) of the secret fields
    Column("secret_hints", JSON, nullable=False),  # the last 4 characters of each secret
    Column("webhook_token_hash", String(64), unique=True),  # sha256 of the webhook URL token
    Column("version", Integer, nullable=False),
    Column("created_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
    Column("verified_at", TS),
    UniqueConstraint("tenant_id", "provider"),
)

# The tenant config a message's last attempt went through (None: the platform's provider).
messages.append_column(Column("provider_config_id", ID))

# --- Bulk broadcasts and recipient lists (migration 0008) ---

# One broadcast: the message (a `{{name}}` template), its options, counts and the expander's
# lease and chunk cursor (`expanded_count` recipients have become outbox rows).
bulks = Table(
    "bulks",
    metadata,
    Column("id", ID, primary_key=True),
    Column("tenant_id", ID, ForeignKey("tenants.id"), nullable=False),
    Column("user_id", ID),
    Column("status", String(16), nullable=False),
    Column("list_id", ID),
    Column("message", Text, nullable=False),
    Column("variables", JSON, nullable=False),
    Column("category", String(16), nullable=False),
    Column("sender_id", String(64)),
    Column("tags", JSON, nullable=False),
    Column("custom_data", JSON, nullable=False),
    Column("template_key", String(200)),
    Column("smart_encoding", Integer, nullable=False),
    Column("validity_seconds", Integer),
    Column("scheduled_at", TS),
    Column("time_zone", String(64)),
    Column("accepted_count", Integer, nullable=False),
    Column("rejected_count", Integer, nullable=False),
    Column("duplicate_count", Integer, nullable=False),
    Column("expanded_count", Integer, nullable=False),
    Column("lease_owner", String(64)),
    Column("lease_expires_at", TS),
    Column("created_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
    Column("canceled_at", TS),
    Index("ix_bulks_tenant_created", "tenant_id", "created_at", "id"),
    Index("ix_bulks_status_lease", "status", "lease_expires_at"),
)

# The accepted recipients, stored compactly behind the 202 until the expander writes them out.
bulk_recipients = Table(
    "bulk_recipients",
    metadata,
    Column("bulk_id", ID, ForeignKey("bulks.id"), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("phone", String(32), nullable=False),
    Column("region", String(3)),
    Column("variables", Text),  # a JSON object, or NULL when the bulk's defaults do
)

recipient_lists = Table(
    "recipient_lists",
    metadata,
    Column("id", ID, primary_key=True),
    Column("tenant_id", ID, ForeignKey("tenants.id"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("created_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
    Index("ix_recipient_lists_tenant_created", "tenant_id", "created_at", "id"),
)

list_members = Table(
    "list_members",
    metadata,
    Column("list_id", ID, ForeignKey("recipient_lists.id"), primary_key=True),
    Column("phone", String(32), primary_key=True),
    Column("region", String(3)),
    Column("variables", Text),  # a JSON object, or NULL
    Column("added_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
)

# The broadcast a message belongs to (None: sent on its own), for progress and cancel.
messages.append_column(Column("bulk_id", ID))
Index("ix_messages_bulk_status", messages.c.bulk_id, messages.c.status)

# --- Sender pacing (migration 0009): tenants' throughput per sender, shared reservation state ---

sender_throughput = Table(
    "sender_throughput",
    metadata,
    Column("tenant_id", ID, ForeignKey("tenants.id"), primary_key=True),
    Column("sender", String(64), primary_key=True),
    Column("segments_per_second", Integer, nullable=False),
    Column("source", String(200), nullable=False),
    Column("updated_at", TS, nullable=False),
)

# One row per (provider, sender) being paced when Redis is not configured (domain/reservations).
sender_pacing = Table(
    "sender_pacing",
    metadata,
    Column("bucket_key", String(200), primary_key=True),
    Column("state", JSON, nullable=False),
    Column("version", Integer, nullable=False),
    Column("updated_at", TS, nullable=False),
)
