"""sender throughput settings and pacing state

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.String(length=40)
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "sender_throughput",
        sa.Column("tenant_id", ID, nullable=False),
        sa.Column("sender", sa.String(length=64), nullable=False),
        sa.Column("segments_per_second", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_sender_throughput_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("tenant_id", "sender", name=op.f("pk_sender_throughput")),
    )
    op.create_table(
        "sender_pacing",
        sa.Column("bucket_key", sa.String(length=200), nullable=False),
        sa.Column("state", sa.JSON(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("bucket_key", name=op.f("pk_sender_pacing")),
    )


def downgrade() -> None:
    op.drop_table("sender_pacing")
    op.drop_table("sender_throughput")
