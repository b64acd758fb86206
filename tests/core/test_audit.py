"""The audit chain verifies, and any edited, deleted or reordered row is found."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from eqian.core import audit
from eqian.core.audit import AuditLog
from tests.factories import audit_guard_lifted


async def _append(db: AsyncSession, n: int) -> None:
    for i in range(n):
        await audit.record(
            db,
            actor_id=1,
            actor_name="station_officer",
            action="unit.update",
            entity="unit",
            entity_id=i,
            changes={"employee_count": [i, i + 1], "name": "织里童装"},
            ip="10.0.0.1",
        )
    await db.commit()


async def test_intact_chain_verifies(db: AsyncSession) -> None:
    await _append(db, 5)
    result = await audit.verify(db)
    assert result.ok
    assert result.rows == 5
    seqs = (await db.scalars(select(AuditLog.seq).order_by(AuditLog.seq))).all()
    assert list(seqs) == [1, 2, 3, 4, 5]


@pytest.mark.parametrize(
    ("tamper", "seq", "reason"),
    [
        ("edit", 3, "row content does not match its hash"),
        ("delete", 4, "missing rows 3..3"),
        ("rehash", 4, "prev_hash does not match the previous row"),
    ],
)
async def test_tampering_is_detected(db: AsyncSession, tamper: str, seq: int, reason: str) -> None:
    await _append(db, 5)
    async with audit_guard_lifted(db):
        if tamper == "edit":
            await db.execute(update(AuditLog).where(AuditLog.seq == 3).values(actor_name="someone_else"))
        elif tamper == "delete":
            await db.execute(delete(AuditLog).where(AuditLog.seq == 3))
        else:
            # A careful forger recomputes the edited row's own hash: the next row's link still breaks.
            row = await db.scalar(select(AuditLog).where(AuditLog.seq == 3))
            assert row is not None
            row.changes = {"employee_count": [0, 999]}
            row.hash = audit._row_digest(row)
        await db.commit()
    db.expunge_all()
    result = await audit.verify(db)
    assert not result.ok
    assert (seq, reason) in [(p.seq, p.reason) for p in result.problems]


async def test_audit_row_rolls_back_with_the_change(
    db: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    await _append(db, 1)
    async with sessionmaker() as session:
        await audit.record(session, actor_id=1, actor_name="x", action="unit.create", entity="unit")
        await session.rollback()
    result = await audit.verify(db)
    assert (result.ok, result.rows) == (True, 1)
