"""The demo activities on a town-scale district: fast, deterministic, rotating, attendance by risk."""

from __future__ import annotations

import datetime as dt
import itertools
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from sqlalchemy import delete, func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

import eqian.activities.models  # noqa: F401 - registers the tables on Base.metadata
from eqian.activities.models import Activity, ActivityInvitation, ActivityIssue
from eqian.all_models import Base
from eqian.core.db import make_engine, make_sessionmaker
from eqian.demo.activities import seed_activities
from eqian.demo.generator import seed_demo
from eqian.demo.risk import hidden_risk
from tests.conftest import BACKENDS, PG_URL

SEED = 365
TODAY = dt.date(2026, 3, 18)  # a Wednesday


@dataclass
class Seeded:
    factory: async_sessionmaker[AsyncSession]
    counts: dict[str, int]
    seconds: float


async def _seed(engine: AsyncEngine) -> Seeded:
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    factory = make_sessionmaker(engine)
    await seed_demo(factory, seed=SEED, password="demo-pass-365", today=TODAY, domains=False)
    async with factory() as session:
        started = time.perf_counter()
        counts = await seed_activities(session, seed=SEED, today=TODAY)
        await session.commit()
        seconds = time.perf_counter() - started
    return Seeded(factory, counts, seconds)


@pytest.fixture(scope="module", params=BACKENDS)
async def seeded(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Seeded]:
    if request.param == "sqlite":
        engine = make_engine(f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('actdemo') / 'demo.db'}")
        try:
            yield await _seed(engine)
        finally:
            await engine.dispose()
        return
    schema = f"eqian_actdemo_{uuid.uuid4().hex[:12]}"
    admin = make_engine(PG_URL)
    engine = create_async_engine(PG_URL, connect_args={"server_settings": {"search_path": schema}})
    try:
        async with admin.begin() as conn:
            await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        yield await _seed(engine)
    finally:
        await engine.dispose()
        async with admin.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        await admin.dispose()


async def test_town_scale_is_fast_and_counts_match(seeded: Seeded) -> None:
    async with seeded.factory() as s:
        assert await s.scalar(select(func.count(Activity.id))) == seeded.counts["activities"]
        assert await s.scalar(select(func.count(ActivityInvitation.id))) == seeded.counts["invitations"]
    assert seeded.counts["activities"] > 500
    assert seeded.counts["issues"] > 0


async def test_weekly_roundtables_rotate_and_the_next_four_weeks_are_planned(seeded: Seeded) -> None:
    async with seeded.factory() as s:
        rows = (
            await s.execute(
                select(Activity.station_id, Activity.week_start, Activity.category_code, Activity.status)
                .where(Activity.kind == "roundtable")
                .order_by(Activity.station_id, Activity.week_start)
            )
        ).all()
    by_station: dict[int | None, list[tuple[dt.date | None, str | None, str]]] = {}
    for sid, week, cat, status in rows:
        by_station.setdefault(sid, []).append((week, cat, status))
    this_week = TODAY - dt.timedelta(days=TODAY.weekday())
    for weeks in by_station.values():
        dates = [w for w, _, _ in weeks]
        assert len(dates) == len(set(dates))  # never two in a week
        assert all(b - a == dt.timedelta(weeks=1) for a, b in itertools.pairwise(dates))  # type: ignore[operator]
        cats = [c for _, c, _ in weeks]
        assert cats[0] != cats[1]  # it rotates
        future = [st for w, _, st in weeks if w is not None and w >= this_week]
        assert len(future) == 4
        assert set(future) == {"planned"}
        assert {st for w, _, st in weeks if w is not None and w < this_week - dt.timedelta(weeks=1)} <= {
            "held",
            "cancelled",
        }


async def test_risky_units_attend_less(seeded: Seeded) -> None:
    async with seeded.factory() as s:
        rows = (
            await s.execute(
                select(ActivityInvitation.unit_id, ActivityInvitation.attended).where(
                    ActivityInvitation.attended.is_not(None)
                )
            )
        ).all()
    low = [bool(att) for uid, att in rows if hidden_risk(SEED, uid) < 0.15]
    high = [bool(att) for uid, att in rows if hidden_risk(SEED, uid) > 0.45]
    assert low
    assert high
    assert sum(low) / len(low) > sum(high) / len(high) + 0.2


async def test_the_same_seed_and_day_give_the_same_rows(seeded: Seeded) -> None:
    async with seeded.factory() as s:
        first = (
            await s.execute(select(Activity.title, Activity.starts_at).order_by(Activity.id).limit(50))
        ).all()
        await s.execute(delete(ActivityInvitation))
        await s.execute(delete(ActivityIssue))
        await s.execute(delete(Activity))
        again = await seed_activities(s, seed=SEED, today=TODAY)
        second = (
            await s.execute(select(Activity.title, Activity.starts_at).order_by(Activity.id).limit(50))
        ).all()
        await s.rollback()
    assert again == seeded.counts
    assert first == second
