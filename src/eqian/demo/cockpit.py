"""Demo data of the cockpit: fill the rollups from everything the other seeds wrote.

Runs last among the domain seeds (after the safety index), inside the seeding transaction (no
commit): every month from two years before ``today`` up to ``today``'s month is computed, so the
cockpit answers 同比 for the whole of the last year right after ``eqian demo seed``.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy.ext.asyncio import AsyncSession

from eqian.cockpit import rollups
from eqian.core.months import shift as shift_month

MONTHS_BACK = 25


async def seed_cockpit(session: AsyncSession, *, seed: int, today: dt.date) -> dict[str, int]:
    last = f"{today.year:04d}-{today.month:02d}"
    done = await rollups.rebuild(session, shift_month(last, -MONTHS_BACK), last, commit=False)
    return {"cockpit_months": len(done), "cockpit_rollup_rows": sum(done.values())}
