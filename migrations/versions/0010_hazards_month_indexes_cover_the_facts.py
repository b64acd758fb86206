"""the hazards' finding and verification indexes carry what the monthly facts count

``hazards.facts`` counts a month's hazards found, those verified (with the days it took) and
those verified after the month although overdue at its end. With single-column indexes each of
the month's hazards was fetched from the table (50,000 rows a month in bench/index.py's city);
with the unit, finding time and deadline in the index they are read from the index alone.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-25 03:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_FOUND, _VERIFIED = "ix_hz_hazards_found_at", "ix_hz_hazards_verified_at"


def upgrade() -> None:
    op.drop_index(_FOUND, table_name="hz_hazards")
    op.create_index(_FOUND, "hz_hazards", ["found_at", "unit_id"])
    op.drop_index(_VERIFIED, table_name="hz_hazards")
    op.create_index(_VERIFIED, "hz_hazards", ["verified_at", "unit_id", "found_at", "deadline"])


def downgrade() -> None:
    op.drop_index(_VERIFIED, table_name="hz_hazards")
    op.create_index(_VERIFIED, "hz_hazards", ["verified_at"])
    op.drop_index(_FOUND, table_name="hz_hazards")
    op.create_index(_FOUND, "hz_hazards", ["found_at"])
