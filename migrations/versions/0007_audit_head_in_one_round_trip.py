"""the audit chain's head with its lock in one round trip (PostgreSQL)

``eqian_audit_head(after)`` takes the chain's advisory lock and then reads the last row, each in a
statement of its own so that the read sees rows committed while the lock was awaited. Its argument
is ignored: a statement passes what it must finish before taking the lock (an argument is
evaluated before the call; nothing else in a statement's plan orders its parts). Appenders
(``core.audit``, the incident intake's batch) used two round trips for it; the intake's batch
now links its audit rows inside one statement that calls this function.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24 23:45:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# A frozen copy of eqian.core.audit.PG_HEAD_FUNCTION: a migration must not change when the code does.
_HEAD_FUNCTION = (
    "CREATE OR REPLACE FUNCTION eqian_audit_head(after BIGINT) "
    "RETURNS TABLE (head_seq BIGINT, head_hash VARCHAR) LANGUAGE plpgsql VOLATILE AS $$ BEGIN "
    "PERFORM pg_advisory_xact_lock(7365001); "
    "RETURN QUERY (SELECT a.seq, a.hash FROM audit_log AS a ORDER BY a.seq DESC LIMIT 1) "
    "UNION ALL SELECT CAST(0 AS BIGINT), "
    "CAST('0000000000000000000000000000000000000000000000000000000000000000' AS VARCHAR) "
    "ORDER BY 1 DESC LIMIT 1; "
    "END $$"
)


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_HEAD_FUNCTION)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS eqian_audit_head(BIGINT)")
