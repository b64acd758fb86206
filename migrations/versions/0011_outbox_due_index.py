"""the outbox's undispatched events by id, in place of an index of every dispatch time

The dispatcher asks, every poll (2 s by default) in every worker, for the first hundred events not yet
dispatched, in id order. Dispatched events are kept (they are the record of what went out), so
with a backlog (a 110 export of 100,000 rows imported at once, an outage of a handler)
PostgreSQL walked the primary key past every event ever dispatched to find them: 27 ms a round
with 220,000 behind, 1,000 rounds to drain that import. This index holds the undispatched events
only, in id order: a round reads its hundred rows (0.07 ms). The index of ``dispatched_at``
served nothing but that question and grew with every event sent; it goes.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-25 07:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_DUE = sa.text("dispatched_at IS NULL")


def upgrade() -> None:
    op.create_index("ix_outbox_events_due", "outbox_events", ["id"], postgresql_where=_DUE, sqlite_where=_DUE)
    op.drop_index("ix_outbox_events_dispatched_at", table_name="outbox_events")


def downgrade() -> None:
    op.create_index("ix_outbox_events_dispatched_at", "outbox_events", ["dispatched_at"])
    op.drop_index("ix_outbox_events_due", table_name="outbox_events")
