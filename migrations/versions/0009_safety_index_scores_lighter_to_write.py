"""safety_index_scores keyed by (unit_id, month), without foreign keys or single-column indexes

A city's month is 20,000 rows written at once by ``compute_month`` from its own select of units;
neither units nor stations are deleted. On PostgreSQL the two foreign keys' per-row checks were
190 of the insert's 310 ms and the ``unit_id`` and ``station_id`` indexes another 35 ms. The
surrogate ``id`` (a sequence call per row, an index of its own) goes: the unique ``(month,
unit_id)`` becomes the key ``(unit_id, month)``, which also serves a unit's history (see
eqian.safety_index.models.SafetyIndexScore).

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-25 02:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLE = "safety_index_scores"
_UNIT_FK = "fk_safety_index_scores_unit_id_units"
_STATION_FK = "fk_safety_index_scores_station_id_stations"
_KEY = "pk_safety_index_scores"


def upgrade() -> None:
    with op.batch_alter_table(_TABLE) as batch:
        batch.drop_constraint(_UNIT_FK, type_="foreignkey")
        batch.drop_constraint(_STATION_FK, type_="foreignkey")
        batch.drop_index("ix_safety_index_scores_unit_id")
        batch.drop_index("ix_safety_index_scores_station_id")
        batch.drop_constraint("uq_safety_index_scores_month", type_="unique")
        batch.drop_constraint(_KEY, type_="primary")
        batch.drop_column("id")
        batch.create_primary_key(_KEY, ["unit_id", "month"])


def downgrade() -> None:
    with op.batch_alter_table(_TABLE) as batch:
        batch.drop_constraint(_KEY, type_="primary")
    # A number for every row again: PostgreSQL fills an identity column as it adds it; SQLite
    # numbers the NULLs copied into an INTEGER PRIMARY KEY as it rebuilds the table.
    with op.batch_alter_table(_TABLE, recreate="always") as batch:
        batch.add_column(sa.Column("id", sa.Integer(), sa.Identity(), nullable=False))
        batch.create_primary_key(_KEY, ["id"])
        batch.create_unique_constraint("uq_safety_index_scores_month", ["month", "unit_id"])
        batch.create_index("ix_safety_index_scores_station_id", ["station_id"], unique=False)
        batch.create_index("ix_safety_index_scores_unit_id", ["unit_id"], unique=False)
        batch.create_foreign_key(_STATION_FK, "stations", ["station_id"], ["id"])
        batch.create_foreign_key(_UNIT_FK, "units", ["unit_id"], ["id"], ondelete="CASCADE")
