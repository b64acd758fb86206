"""Demo data of the safety index: the index of the demo's last twelve full months.

Runs after the other domains' seeds (it reads their facts), so it must come last in
``DOMAIN_SEEDS``. Months are computed oldest first, so each month's change from the month before
is filled in. Generated data: no audit rows and no notifications (``record=False``).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy.ext.asyncio import AsyncSession

from eqian.core.months import shift as shift_month
from eqian.core.permissions import SYSTEM
from eqian.safety_index.service import compute_month

MONTHS = 12


async def seed_safety_index(session: AsyncSession, *, seed: int, today: dt.date) -> dict[str, int]:
    """Compute the index for the twelve months before ``today``'s month; commits each month."""
    del seed  # deterministic already: the index is a function of the other seeds' rows
    last = shift_month(today.strftime("%Y-%m"), -1)
    scores = 0
    for n in range(MONTHS - 1, -1, -1):
        result = await compute_month(session, SYSTEM, shift_month(last, -n), replace=True, record=False)
        scores += result.units
    return {"safety_index_months": MONTHS, "safety_index_scores": scores}
