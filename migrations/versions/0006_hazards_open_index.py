"""a partial index of the hazards never verified, for the monthly overdue count

``hazards.facts`` counts, every month and at every cockpit refresh, the hazards still open at the
end of the month although past their deadline. With only the ``verified_at`` index that meant a
bitmap heap scan of every open hazard the district ever had (190,000 rows in bench/index.py's
city); this index holds what the count reads, so the open part is read from the index alone.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24 20:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OPEN = sa.text("verified_at IS NULL")


def upgrade() -> None:
    op.create_index(
        "ix_hz_hazards_open",
        "hz_hazards",
        ["deadline", "unit_id", "found_at"],
        postgresql_where=_OPEN,
        sqlite_where=_OPEN,
    )


def downgrade() -> None:
    op.drop_index("ix_hz_hazards_open", table_name="hz_hazards")
