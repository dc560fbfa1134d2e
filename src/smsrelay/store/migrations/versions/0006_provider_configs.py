"""per-tenant provider credentials, encrypted at rest

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29 10:00:00
"""

from collections.abc import Sequence

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass  # PLACEHOLDER: filled in by the per-tenant provider credentials work


def downgrade() -> None:
    pass  # PLACEHOLDER: filled in by the per-tenant provider credentials work
