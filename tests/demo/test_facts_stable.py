"""A finished month's facts do not change when things happen after it.

On the seeded district, February's facts from every domain; then what happened after February is
rewritten both ways — what was still open at its end is settled three weeks later (incidents
resolved, hazards verified, instructions acknowledged), what was settled after it is taken back
(open again as of now) — and February's facts are read again. Only the workforce's registration
counts are judged today on purpose (docs/safety-index.md) and are left out of the comparison.
"""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from eqian.core.facts import Fact, collect
from eqian.core.months import bounds
from eqian.hazards.models import Hazard
from eqian.incidents.models import Incident
from eqian.messaging.models import Receipt

pytestmark = pytest.mark.xdist_group("demo")  # see tests/demo/test_environment_demo.py

MONTH = "2025-02"  # the last full month before the district's TODAY
JUDGED_TODAY = ("workforce.",)


def _by_key(facts: list[Fact]) -> dict[tuple[int | None, int | None, str], float]:
    out: dict[tuple[int | None, int | None, str], float] = {}
    for f in facts:
        if not f.metric.startswith(JUDGED_TODAY):
            key = (f.station_id, f.unit_id, f.metric)
            out[key] = out.get(key, 0.0) + f.value
    return out


async def test_settling_or_reopening_later_leaves_a_finished_month_as_it_was(session: AsyncSession) -> None:
    start, end = bounds(MONTH)
    before = _by_key(await collect(session, start, end))
    assert any(m.startswith("incidents.") for _, _, m in before)
    assert any(m.startswith("messaging.") for _, _, m in before)
    assert any(m == "hazards.overdue_open" for _, _, m in before)

    later = end + dt.timedelta(days=20)
    settled = undone = 0
    for model, column, of_the_month, settle, undo in (
        (
            Incident,
            Incident.resolved_at,
            Incident.reported_at < end,
            {"status": "resolved"},
            {"status": "in_progress", "closed_at": None},
        ),
        (Hazard, Hazard.verified_at, Hazard.found_at < end, {"status": "verified"}, {"status": "open"}),
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
    assert settled > 0
    assert undone > 0

    after = _by_key(await collect(session, start, end))  # the same transaction: the rewrite is seen
    assert after == before
