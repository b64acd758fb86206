"""safety index months stored as figures, explained with the model version's own texts

A month's deductions are now stored as ``[code, points, [metric values]]`` and their reasons,
links and advice written when read, with the texts of the model version the month was computed
with: ``safety_index_models`` keeps each version as it was first used. Rows computed before this
keep their written-out explanations and are read as they are.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-25 02:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import eqian.core.db

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "safety_index_models",
        sa.Column("version", sa.String(length=32), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("created_at", eqian.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("version", name=op.f("pk_safety_index_models")),
    )


def downgrade() -> None:
    op.drop_table("safety_index_models")
