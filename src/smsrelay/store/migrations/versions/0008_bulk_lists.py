"""bulk broadcasts and recipient lists

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.String(length=40)
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    _bulks()
    op.create_table(
        "bulk_recipients",
        sa.Column("bulk_id", ID, nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("phone", sa.String(length=32), nullable=False),
        sa.Column("region", sa.String(length=3), nullable=True),
        sa.Column("variables", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["bulk_id"], ["bulks.id"], name=op.f("fk_bulk_recipients_bulk_id_bulks")
        ),
        sa.PrimaryKeyConstraint("bulk_id", "seq", name=op.f("pk_bulk_recipients")),
    )
    _lists()
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("bulk_id", ID, nullable=True))
    op.create_index("ix_messages_bulk_status", "messages", ["bulk_id", "status"])


def _bulks() -> None:
    op.create_table(
        "bulks",
        sa.Column("id", ID, nullable=False),
        sa.Column("tenant_id", ID, nullable=False),
        sa.Column("user_id", ID, nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("list_id", ID, nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("variables", sa.JSON(), nullable=False),
        sa.Column("category", sa.String(length=16), nullable=False),
        sa.Column("sender_id", sa.String(length=64), nullable=True),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("custom_data", sa.JSON(), nullable=False),
        sa.Column("template_key", sa.String(length=200), nullable=True),
        sa.Column("smart_encoding", sa.Integer(), nullable=False),
        sa.Column("validity_seconds", sa.Integer(), nullable=True),
        sa.Column("scheduled_at", TS, nullable=True),
        sa.Column("time_zone", sa.String(length=64), nullable=True),
        sa.Column("accepted_count", sa.Integer(), nullable=False),
        sa.Column("rejected_count", sa.Integer(), nullable=False),
        sa.Column("duplicate_count", sa.Integer(), nullable=False),
        sa.Column("expanded_count", sa.Integer(), nullable=False),
        sa.Column("lease_owner", sa.String(length=64), nullable=True),
        sa.Column("lease_expires_at", TS, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("canceled_at", TS, nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_bulks_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bulks")),
    )
    op.create_index("ix_bulks_tenant_created", "bulks", ["tenant_id", "created_at", "id"])
    op.create_index("ix_bulks_status_lease", "bulks", ["status", "lease_expires_at"])


def _lists() -> None:
    op.create_table(
        "recipient_lists",
        sa.Column("id", ID, nullable=False),
        sa.Column("tenant_id", ID, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_recipient_lists_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recipient_lists")),
    )
    op.create_index(
        "ix_recipient_lists_tenant_created", "recipient_lists", ["tenant_id", "created_at", "id"]
    )
    op.create_table(
        "list_members",
        sa.Column("list_id", ID, nullable=False),
        sa.Column("phone", sa.String(length=32), nullable=False),
        sa.Column("region", sa.String(length=3), nullable=True),
        sa.Column("variables", sa.Text(), nullable=True),
        sa.Column("added_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["list_id"],
            ["recipient_lists.id"],
            name=op.f("fk_list_members_list_id_recipient_lists"),
        ),
        sa.PrimaryKeyConstraint("list_id", "phone", name=op.f("pk_list_members")),
    )


def downgrade() -> None:
    op.drop_index("ix_messages_bulk_status", table_name="messages")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("bulk_id")
    op.drop_table("list_members")
    op.drop_index("ix_recipient_lists_tenant_created", table_name="recipient_lists")
    op.drop_table("recipient_lists")
    op.drop_table("bulk_recipients")
    op.drop_index("ix_bulks_status_lease", table_name="bulks")
    op.drop_index("ix_bulks_tenant_created", table_name="bulks")
    op.drop_table("bulks")
