"""per-tenant price overrides; the provider-reported price beside each message's estimate

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.String(length=40)
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "tenant_prices",
        sa.Column("tenant_id", ID, nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.Column("per_segment", sa.String(length=24), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_tenant_prices_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("tenant_id", "provider", "country", name=op.f("pk_tenant_prices")),
    )
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("provider_price", sa.String(length=24), nullable=True))
        batch.add_column(sa.Column("provider_price_unit", sa.String(length=3), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("provider_price_unit")
        batch.drop_column("provider_price")
    op.drop_table("tenant_prices")
