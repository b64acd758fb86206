"""A past month's facts do not change when things happen after it.

On a seeded district: the facts of a finished month, then everything still open at its end is
settled later (incidents resolved, hazards verified, instructions acknowledged, weeks after the
month), and the month's facts are read again a year on. Only the workforce's registration counts
are judged today on purpose (docs/safety-index.md) and are left out of the comparison.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy import update

from eqian.all_models import Base
from eqian.core.db import make_engine, make_sessionmaker
from eqian.core.facts import Fact, collect
from eqian.core.months import bounds
from eqian.demo.generator import seed_demo
from eqian.hazards.models import Hazard
from eqian.incidents.models import Incident
from eqian.messaging.models import Receipt

TODAY = dt.date(2026, 11, 23)
MONTH = "2026-10"
JUDGED_TODAY = ("workforce.",)


def _by_key(facts: list[Fact]) -> dict[tuple[int | None, int | None, str], float]:
    out: dict[tuple[int | None, int | None, str], float] = {}
    for f in facts:
        if not f.metric.startswith(JUDGED_TODAY):
            key = (f.station_id, f.unit_id, f.metric)
            out[key] = out.get(key, 0.0) + f.value
    return out


async def test_settling_open_matters_later_leaves_a_finished_month_as_it_was(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'demo.db'}")
    try:
        async with engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
        factory = make_sessionmaker(engine)
        await seed_demo(factory, seed=365, password="Demo-pass-365", units=60, today=TODAY)
        start, end = bounds(MONTH)
        async with factory() as session:
            before = _by_key(await collect(session, start, end))
        assert any(m.startswith("incidents.") for _, _, m in before)
        assert any(m.startswith("messaging.") for _, _, m in before)
        assert any(m == "hazards.overdue_open" for _, _, m in before)

        # What happened after the month is rewritten both ways: what was still open is settled
        # later, and what was settled after the month is taken back (open again as of now).
        later = end + dt.timedelta(days=20)
        settled = undone = 0
        async with factory() as session:
            for model, column, of_the_month, settle, undo in (
                (
                    Incident,
                    Incident.resolved_at,
                    Incident.reported_at < end,
                    {"status": "resolved"},
                    {"status": "in_progress", "closed_at": None},
                ),
                (
                    Hazard,
                    Hazard.verified_at,
                    Hazard.found_at < end,
                    {"status": "verified"},
                    {"status": "open"},
                ),
                (
                    Receipt,
                    Receipt.acknowledged_at,
                    Receipt.deadline < end,
                    {"ack_latency_seconds": 20 * 86400.0},
                    {"ack_latency_seconds": None},
                ),
            ):
                result = await session.execute(
                    update(model).where(column.is_(None), of_the_month).values({column.key: later, **settle})
                )
                settled += result.rowcount  # type: ignore[attr-defined]
                result = await session.execute(
                    update(model)
                    .where(column > end, column != later, of_the_month)
                    .values({column.key: None, **undo})
                )
                undone += result.rowcount  # type: ignore[attr-defined]
            await session.commit()
        assert settled > 0
        assert undone > 0

        async with factory() as session:
            after = _by_key(await collect(session, start, end))
        assert after == before
    finally:
        await engine.dispose()
