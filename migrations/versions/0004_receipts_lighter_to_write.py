"""msg_receipts without foreign keys and without its station and deadline indexes

Receipts are written only by one INSERT … SELECT from units in the transaction that inserts their
instruction, and neither units nor instructions are deleted; the per-row checks of the two
constraints were two thirds of the time before an instruction reaches anyone, and the two indexes,
which no query reads by, 40 % of the rest (see eqian.messaging.models.Receipt).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24 04:40:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_INSTRUCTION_FK = "fk_msg_receipts_instruction_id_msg_instructions"
_UNIT_FK = "fk_msg_receipts_unit_id_units"


def upgrade() -> None:
    with op.batch_alter_table("msg_receipts") as batch:
        batch.drop_constraint(_INSTRUCTION_FK, type_="foreignkey")
        batch.drop_constraint(_UNIT_FK, type_="foreignkey")
        batch.drop_index("ix_msg_receipts_deadline")
        batch.drop_index("ix_msg_receipts_station_id")


def downgrade() -> None:
    with op.batch_alter_table("msg_receipts") as batch:
        batch.create_index("ix_msg_receipts_station_id", ["station_id"], unique=False)
        batch.create_index("ix_msg_receipts_deadline", ["deadline"], unique=False)
        batch.create_foreign_key(
            _INSTRUCTION_FK, "msg_instructions", ["instruction_id"], ["id"], ondelete="CASCADE"
        )
        batch.create_foreign_key(_UNIT_FK, "units", ["unit_id"], ["id"], ondelete="CASCADE")
