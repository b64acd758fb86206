"""The demo's inspections and hazards at town scale: fast, about 2,700 verified a year, a few
overdue now, tied to each unit's hidden risk, and the same for the same seed and day."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

import eqian.hazards.models  # noqa: F401 - registers the tables before create_all
from eqian.all_models import Base
from eqian.core.db import make_engine, make_sessionmaker
from eqian.demo.generator import seed_demo
from eqian.demo.hazards import seed_hazards
from eqian.demo.risk import hidden_risk
from eqian.hazards.models import Hazard, HazardEvent
from eqian.hazards.service import is_overdue

SEED = 365
TODAY = dt.date(2026, 11, 23)


@dataclass
class Seeded:
    factory: async_sessionmaker[AsyncSession]
    report: dict[str, int]
    seconds: float


async def _seeded(path: Path) -> tuple[AsyncEngine, Seeded]:
    engine = make_engine(f"sqlite+aiosqlite:///{path}")
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    factory = make_sessionmaker(engine)
    await seed_demo(factory, seed=SEED, password="Demo-pass-365", today=TODAY, domains=False)
    async with factory() as session:
        started = time.perf_counter()
        report = await seed_hazards(session, seed=SEED, today=TODAY)
        seconds = time.perf_counter() - started
    return engine, Seeded(factory, report, seconds)


@pytest.fixture(scope="module")
async def seeded(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Seeded]:
    engine, result = await _seeded(tmp_path_factory.mktemp("hz") / "demo.db")
    yield result
    await engine.dispose()


async def test_town_scale_volume_and_speed(seeded: Seeded) -> None:
    r = seeded.report
    assert 2 * 2_200 <= r["verified"] <= 2 * 3_200, r
    assert 0 < r["overdue"] < 150, r
    async with seeded.factory() as s:
        assert await s.scalar(select(func.count()).select_from(Hazard)) == r["hazards"]
        assert await s.scalar(select(func.count()).select_from(HazardEvent)) == r["events"]
        now = dt.datetime(2026, 11, 22, 16, tzinfo=dt.UTC)  # the seed's anchor: 00:00 of TODAY in Beijing
        assert await s.scalar(select(func.count()).select_from(Hazard).where(is_overdue(now))) == r["overdue"]
        # Verified ones were verified after they were found; escalation already caught up.
        assert not await s.scalar(
            select(func.count()).select_from(Hazard).where(Hazard.verified_at < Hazard.found_at)
        )
        assert not await s.scalar(
            select(func.count()).select_from(Hazard).where(is_overdue(now), Hazard.escalation_level == 0)
        )
        per_unit = dict(
            (await s.execute(select(Hazard.unit_id, func.count()).group_by(Hazard.unit_id))).all()
        )
    risky = [n for uid, n in per_unit.items() if hidden_risk(SEED, uid) > 0.45]
    safe = [n for uid, n in per_unit.items() if hidden_risk(SEED, uid) < 0.1]
    assert sum(risky) / len(risky) > 2 * sum(safe) / len(safe)


async def test_same_seed_same_hazards(seeded: Seeded, tmp_path_factory: pytest.TempPathFactory) -> None:
    engine, again = await _seeded(tmp_path_factory.mktemp("hz2") / "demo.db")
    try:
        assert again.report == seeded.report
        query = select(Hazard.unit_id, Hazard.severity, Hazard.found_at, Hazard.status).order_by(Hazard.id)
        async with seeded.factory() as a, again.factory() as b:
            assert (await a.execute(query)).all() == (await b.execute(query)).all()
    finally:
        await engine.dispose()
