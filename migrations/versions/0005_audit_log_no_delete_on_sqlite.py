"""audit_log rows cannot be deleted on SQLite either

Migration 0003 left DELETE open on SQLite, trusting ``eqian audit verify`` to report the gap a
deleted row leaves in ``seq``; but deleting the newest rows leaves no gap, and SQLite is the
default deployment. PostgreSQL refuses DELETE since 0003.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24 16:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# A frozen copy of the second statement of eqian.core.audit.SQLITE_APPEND_ONLY.
_SQLITE = (
    "CREATE TRIGGER IF NOT EXISTS audit_log_no_delete BEFORE DELETE ON audit_log "
    "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: DELETE refused'); END"
)


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute(_SQLITE)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_delete")
