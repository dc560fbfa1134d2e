"""per-tenant credit balance, its ledger, and alert deliveries

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.String(length=40)
TS = sa.DateTime(timezone=True)
SERIAL = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _tenant_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["tenant_id"], ["tenants.id"], name=op.f(f"fk_{table}_tenant_id_tenants")
    )


def upgrade() -> None:
    op.create_table(
        "balance_accounts",
        sa.Column("tenant_id", ID, nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("balance_micros", sa.BigInteger(), nullable=False),
        sa.Column("low_alerted", sa.Integer(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        _tenant_fk("balance_accounts"),
        sa.PrimaryKeyConstraint("tenant_id", name=op.f("pk_balance_accounts")),
    )
    _ledger()
    op.create_table(
        "balance_watch",
        sa.Column("message_id", ID, nullable=False),
        sa.Column("tenant_id", ID, nullable=False),
        sa.Column("send_round", sa.Integer(), nullable=False),
        sa.Column("debited", sa.Integer(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["message_id"], ["messages.id"], name=op.f("fk_balance_watch_message_id_messages")
        ),
        sa.PrimaryKeyConstraint("message_id", name=op.f("pk_balance_watch")),
    )
    op.create_table(
        "alert_settings",
        sa.Column("tenant_id", ID, nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=True),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("secret_encrypted", sa.Text(), nullable=True),
        sa.Column("low_balance_threshold_micros", sa.BigInteger(), nullable=True),
        sa.Column("hard_stop", sa.Integer(), nullable=False),
        sa.Column("failed_sms", sa.Integer(), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        _tenant_fk("alert_settings"),
        sa.PrimaryKeyConstraint("tenant_id", name=op.f("pk_alert_settings")),
    )
    _alerts()


def _ledger() -> None:
    op.create_table(
        "balance_ledger",
        sa.Column("id", SERIAL, autoincrement=True, nullable=False),
        sa.Column("tenant_id", ID, nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("message_id", ID, nullable=True),
        sa.Column("send_round", sa.Integer(), nullable=True),
        sa.Column("amount_micros", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        _tenant_fk("balance_ledger"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_balance_ledger")),
        sa.UniqueConstraint(
            "message_id",
            "kind",
            "send_round",
            name=op.f("uq_balance_ledger_message_id_kind_send_round"),
        ),
    )
    op.create_index("ix_balance_ledger_tenant_id", "balance_ledger", ["tenant_id", "id"])


def _alerts() -> None:
    op.create_table(
        "alerts",
        sa.Column("id", ID, nullable=False),
        sa.Column("tenant_id", ID, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("dedupe_key", sa.String(length=200), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", TS, nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("delivered_at", TS, nullable=True),
        _tenant_fk("alerts"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_alerts_dedupe_key")),
    )
    op.create_index("ix_alerts_state_next", "alerts", ["state", "next_attempt_at"])
    op.create_index("ix_alerts_tenant_created", "alerts", ["tenant_id", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_alerts_tenant_created", table_name="alerts")
    op.drop_index("ix_alerts_state_next", table_name="alerts")
    op.drop_table("alerts")
    op.drop_table("alert_settings")
    op.drop_table("balance_watch")
    op.drop_index("ix_balance_ledger_tenant_id", table_name="balance_ledger")
    op.drop_table("balance_ledger")
    op.drop_table("balance_accounts")
