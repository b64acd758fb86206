"""The demo's incidents at town scale: volumes falling year over year (units'
calls by about a quarter), riskier units calling more, the classifier agreeing with the templates."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy import func, select

from eqian.all_models import Base
from eqian.core.db import make_engine, make_sessionmaker
from eqian.demo.generator import seed_demo
from eqian.demo.incidents import seed_incidents
from eqian.demo.risk import hidden_risk
from eqian.incidents import classifier
from eqian.incidents.models import Incident

SEED = 365
TODAY = dt.date(2026, 11, 23)


async def test_town_scale_incidents(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'demo.db'}")
    try:
        async with engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
        factory = make_sessionmaker(engine)
        await seed_demo(factory, seed=SEED, password="Demo-pass-365", today=TODAY, domains=False)
        classifier.classify("预热")  # loading the lexicon and jieba is the classifier's cost, not the seed's
        async with factory() as session:
            report = await seed_incidents(session, seed=SEED, today=TODAY)
        assert 10_000 < report["incidents"] < 40_000, report
        async with factory() as session:
            split = dt.datetime.combine(TODAY, dt.time(18), dt.UTC) - dt.timedelta(days=365)
            rows = (
                await session.execute(
                    select(
                        Incident.unit_id.is_not(None), Incident.reported_at >= split, func.count()
                    ).group_by(Incident.unit_id.is_not(None), Incident.reported_at >= split)
                )
            ).all()
            n = {(bool(u), bool(recent)): c for u, recent, c in rows}
            unit_yoy = n[(True, True)] / n[(True, False)] - 1
            total_yoy = (n[(True, True)] + n[(False, True)]) / (n[(True, False)] + n[(False, False)]) - 1
            assert -0.35 < unit_yoy < -0.15, unit_yoy
            assert -0.2 < total_yoy < -0.04, total_yoy
            per_unit = dict(
                (
                    await session.execute(
                        select(Incident.unit_id, func.count())
                        .where(Incident.unit_id.is_not(None))
                        .group_by(Incident.unit_id)
                    )
                ).all()
            )
            ranked = sorted(per_unit, key=lambda uid: hidden_risk(SEED, uid))
            fifth = len(ranked) // 5
            low = sum(per_unit[u] for u in ranked[:fifth]) / fifth
            high = sum(per_unit[u] for u in ranked[-fifth:]) / fifth
            assert high > 2.5 * low, (low, high)
            labor = await session.scalar(select(func.count()).where(Incident.category == "labor"))
            other = await session.scalar(select(func.count()).where(Incident.category == "other"))
            assert labor
            assert other is not None
            assert labor > 3 * other
    finally:
        await engine.dispose()
