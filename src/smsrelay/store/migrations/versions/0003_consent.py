"""consent ledger, suppressions, STOP holds, inbound messages, tenant settings

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 07:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.String(length=40)
TS = sa.DateTime(timezone=True)
SERIAL = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

# The ledger is evidence: the database itself refuses to change or remove a record.
_SQLITE_GUARDS = [
    f"CREATE TRIGGER consent_records_no_{verb.lower()} BEFORE {verb} ON consent_records "
    "BEGIN SELECT RAISE(ABORT, 'consent_records is append-only'); END"
    for verb in ("UPDATE", "DELETE")
]
_POSTGRES_GUARDS = [
    "CREATE FUNCTION consent_records_append_only() RETURNS trigger LANGUAGE plpgsql AS "
    "$$ BEGIN RAISE EXCEPTION 'consent_records is append-only'; END $$",
    "CREATE TRIGGER consent_records_append_only BEFORE UPDATE OR DELETE ON consent_records "
    "FOR EACH ROW EXECUTE FUNCTION consent_records_append_only()",
]


def upgrade() -> None:
    _consent_records()
    _suppressions()
    _opt_out_holds()
    _inbound_messages()
    _tenant_settings()
    op.create_index("ix_messages_recipient_created", "messages", ["recipient", "created_at"])
    guards = _SQLITE_GUARDS if op.get_bind().dialect.name == "sqlite" else _POSTGRES_GUARDS
    for statement in guards:
        op.execute(statement)


def _consent_records() -> None:
    op.create_table(
        "consent_records",
        sa.Column("seq", SERIAL, autoincrement=True, nullable=False),
        sa.Column("id", ID, nullable=False),
        sa.Column("tenant_id", ID, nullable=False),
        sa.Column("phone", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("category", sa.String(length=16), nullable=True),
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("consent_text", sa.Text(), nullable=False),
        sa.Column("ip", sa.String(length=64), nullable=True),
        sa.Column("user_agent", sa.String(length=500), nullable=True),
        sa.Column("occurred_at", TS, nullable=False),
        sa.Column("recorded_at", TS, nullable=False),
        sa.Column("recorded_by", sa.String(length=64), nullable=True),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_consent_records_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_consent_records")),
        sa.UniqueConstraint("id", name=op.f("uq_consent_records_id")),
    )
    op.create_index(
        "ix_consent_records_tenant_phone", "consent_records", ["tenant_id", "phone", "seq"]
    )
    op.create_index(
        "ix_consent_records_tenant_recorded", "consent_records", ["tenant_id", "recorded_at"]
    )


def _suppressions() -> None:
    op.create_table(
        "suppressions",
        sa.Column("tenant_id", ID, nullable=False),
        sa.Column("phone", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.String(length=24), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("source_ref", sa.String(length=64), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_suppressions_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("tenant_id", "phone", name=op.f("pk_suppressions")),
    )
    op.create_index("ix_suppressions_tenant_created", "suppressions", ["tenant_id", "created_at"])


def _opt_out_holds() -> None:
    op.create_table(
        "opt_out_holds",
        sa.Column("tenant_id", ID, nullable=False),
        sa.Column("phone", sa.String(length=32), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_opt_out_holds_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("tenant_id", "phone", name=op.f("pk_opt_out_holds")),
    )


def _inbound_messages() -> None:
    op.create_table(
        "inbound_messages",
        sa.Column("id", ID, nullable=False),
        sa.Column("provider_message_id", sa.String(length=64), nullable=False),
        sa.Column("tenant_id", ID, nullable=True),
        sa.Column("from_phone", sa.String(length=32), nullable=False),
        sa.Column("to_phone", sa.String(length=32), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("keyword", sa.String(length=16), nullable=False),
        sa.Column("opt_out_type", sa.String(length=16), nullable=True),
        sa.Column("reply", sa.Text(), nullable=True),
        sa.Column("received_at", TS, nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_inbound_messages_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbound_messages")),
        sa.UniqueConstraint(
            "provider_message_id", name=op.f("uq_inbound_messages_provider_message_id")
        ),
    )
    op.create_index(
        "ix_inbound_messages_tenant_received",
        "inbound_messages",
        ["tenant_id", "received_at", "id"],
    )


def _tenant_settings() -> None:
    op.create_table(
        "tenant_settings",
        sa.Column("tenant_id", ID, nullable=False),
        sa.Column("opt_out_reply", sa.Text(), nullable=True),
        sa.Column("opt_in_reply", sa.Text(), nullable=True),
        sa.Column("help_reply", sa.Text(), nullable=True),
        sa.Column("quiet_start", sa.String(length=5), nullable=True),
        sa.Column("quiet_end", sa.String(length=5), nullable=True),
        sa.Column("inbound_default", sa.Integer(), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_tenant_settings_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("tenant_id", name=op.f("pk_tenant_settings")),
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for verb in ("update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS consent_records_no_{verb}")
    else:
        op.execute("DROP TRIGGER IF EXISTS consent_records_append_only ON consent_records")
        op.execute("DROP FUNCTION IF EXISTS consent_records_append_only()")
    op.drop_index("ix_messages_recipient_created", table_name="messages")
    for table in (
        "tenant_settings",
        "inbound_messages",
        "opt_out_holds",
        "suppressions",
        "consent_records",
    ):
        op.drop_table(table)
