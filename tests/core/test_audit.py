"""The audit chain verifies, and any edited, deleted or reordered row is found."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
from typing import Any

import pytest
from sqlalchemy import delete, select, text, update
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


def test_a_rows_hash_is_the_payload_the_chain_has_always_hashed() -> None:
    """``link(middle(...))`` is SHA-256 of the JSON array rows were always hashed over, so the rows
    written before it was split in two (for PostgreSQL to link a batch itself) still verify."""
    ts = dt.datetime(2026, 11, 24, 23, 50, 1, 123456, tzinfo=dt.UTC)
    fields: dict[str, Any] = {
        "ts": ts,
        "actor_id": None,
        "actor_name": "织里所·张三",
        "action": "incidents.incident.create",
        "entity": "incident",
        "entity_id": "42",
        "changes": {"route": "mediation", "amount": [1.5, "二万"], "unit_id": None},
        "ip": "10.0.0.1",
    }
    prev = "ab" * 32
    payload = json.dumps(
        [7, ts.isoformat(), *list(fields.values())[1:], prev],
        ensure_ascii=False,
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    assert audit.link(7, audit.middle(**fields), prev) == hashlib.sha256(payload.encode()).hexdigest()


async def test_an_append_waiting_for_the_lock_links_to_what_was_committed_meanwhile(
    db: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """PostgreSQL: a statement that appends (``pg_append``, as the incident intake's batch does) and
    has to wait for the chain's lock links its rows after the rows committed while it waited — its
    own snapshot, taken before, does not hold them; ``eqian_audit_head`` reads after the lock."""
    if db.get_bind().dialect.name != "postgresql":
        pytest.skip("the in-statement append is PostgreSQL's")
    await _append(db, 2)
    entries = [
        audit.Entry(1, "station_officer", "incidents.incident.create", "incident", n, {"n": n})
        for n in (7, 8)
    ]
    ctes, final, params = audit.pg_append(entries)
    async with sessionmaker() as first, sessionmaker() as second:
        await audit.record(
            first, actor_id=1, actor_name="x", action="unit.update", entity="unit", entity_id=3
        )
        await second.execute(select(1))  # its transaction is open before the first commits
        waiting = asyncio.create_task(
            second.execute(text(f"WITH RECURSIVE {', '.join(ctes)} {final}"), params)
        )
        await asyncio.sleep(0.3)
        assert not waiting.done()  # held by the first transaction's lock
        await first.commit()
        seqs = list((await waiting).scalars())
        await second.commit()
    assert seqs == [4, 5]
    result = await audit.verify(db)
    assert (result.ok, result.rows) == (True, 5), result.problems
    stored = (await db.scalars(select(AuditLog).where(AuditLog.seq == 5))).one()
    assert (stored.entity_id, stored.changes, stored.actor_name) == ("8", {"n": 8}, "station_officer")
