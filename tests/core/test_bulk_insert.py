"""``core.db.bulk_insert``: COPY on PostgreSQL stores exactly what an INSERT stores, in the caller's
transaction, and refuses what an INSERT refuses."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from eqian.core.db import bulk_insert, table_of
from eqian.safety_index.models import SafetyIndexScore
from tests.factories import make_world

T = dt.datetime(2026, 11, 1, 2, 3, 4, 567000, tzinfo=dt.UTC)


def _row(unit_id: int, station_id: int, **over: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "month": "2026-10",
        "unit_id": unit_id,
        "station_id": station_id,
        "category_code": "garment",
        "score": 87.5,
        "grade": "good",
        "rank_station": 1,
        "station_units": 2,
        "rank_category": 1,
        "category_units": 2,
        "change": None,
        "deductions": [{"code": "hazards", "reason": "逾期未整改 1 项", "points": 4.0, "metrics": ["a"]}],
        "advice": ["立即整改"],
        "config_version": "2026.1",
        "computed_at": T,
    }
    return row | over


async def test_rows_read_back_as_written_and_roll_back_with_the_transaction(
    db: AsyncSession, engine: AsyncEngine
) -> None:
    w = await make_world(db)
    a1, a2 = w.units["a1"], w.units["a2"]
    rows = [_row(a1, w.station_a), _row(a2, w.station_a, change=-2.5, deductions=[], advice=[])]
    async with AsyncSession(engine) as s:
        await bulk_insert(s, table_of(SafetyIndexScore), rows, chunk=1)
        await s.rollback()
    assert await db.scalar(select(func.count()).select_from(SafetyIndexScore)) == 0

    async with AsyncSession(engine) as s:
        await bulk_insert(s, table_of(SafetyIndexScore), rows)
        await s.commit()
    got = {s.unit_id: s for s in await db.scalars(select(SafetyIndexScore))}
    assert (got[a1].deductions, got[a1].advice) == (rows[0]["deductions"], ["立即整改"])
    assert (got[a1].change, got[a2].change, got[a2].deductions) == (None, -2.5, [])
    assert (got[a1].computed_at, got[a1].month, got[a2].month) == (T, "2026-10", "2026-10")


async def test_what_an_insert_refuses_is_refused(db: AsyncSession, engine: AsyncEngine) -> None:
    w = await make_world(db)
    table = table_of(SafetyIndexScore)
    naive = _row(w.units["a1"], w.station_a, computed_at=T.replace(tzinfo=None))
    async with AsyncSession(engine) as s:
        with pytest.raises(StatementError, match="naive datetime"):  # refused by the column's type
            await bulk_insert(s, table, [_row(w.units["a2"], w.station_a), naive])
    async with AsyncSession(engine) as s:
        with pytest.raises(IntegrityError):  # the same unit twice in a month
            await bulk_insert(s, table, [_row(w.units["a1"], w.station_a)] * 2)
    assert await db.scalar(select(func.count()).select_from(SafetyIndexScore)) == 0


async def test_a_value_shared_by_rows_is_stored_for_each(db: AsyncSession, engine: AsyncEngine) -> None:
    """A value shared by consecutive rows is processed once (bulk_insert reuses its text); rows in
    between with other values, and the shared value again after them, are stored as they are."""
    w = await make_world(db)
    shared = ["立即整改"]
    later = T + dt.timedelta(hours=1)
    units = [(w.units["a1"], w.station_a), (w.units["a2"], w.station_a), (w.units["b1"], w.station_b)]
    advice = [shared, ["另一条"], shared]
    stamps = [T, T, later]
    rows = [_row(u, st, advice=a, computed_at=c) for (u, st), a, c in zip(units, advice, stamps, strict=True)]
    async with AsyncSession(engine) as s:
        await bulk_insert(s, table_of(SafetyIndexScore), rows)
        await s.commit()
    got = {s.unit_id: (s.advice, s.computed_at) for s in await db.scalars(select(SafetyIndexScore))}
    assert got == {u: (a, c) for (u, _), a, c in zip(units, advice, stamps, strict=True)}
