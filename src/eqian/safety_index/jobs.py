"""Scheduled work of safety_index: compute last month's index once the month is over.

Runs hourly on every worker; it does nothing while last month already has an index, so running it
again (or on several workers) changes nothing. The first run after midnight on the 1st (Asia/Shanghai)
computes the month before.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from eqian.core.months import of as month_of
from eqian.core.months import shift as shift_month
from eqian.core.permissions import SYSTEM
from eqian.core.scheduler import Job
from eqian.safety_index.models import SafetyIndexRun
from eqian.safety_index.service import DEFAULT_PACE, compute_month


async def compute_last_month(session: AsyncSession, now: dt.datetime) -> int:
    month = shift_month(month_of(now), -1)
    if await session.get(SafetyIndexRun, month) is not None:
        return 0
    try:
        result = await compute_month(session, SYSTEM, month, pace=DEFAULT_PACE)
    except IntegrityError:
        # Another worker computed the same month first; its run row won, this one is discarded.
        await session.rollback()
        return 0
    return result.units


MONTHLY_JOB = Job(name="safety_index.monthly", every_seconds=3600, run=compute_last_month)
JOBS: list[Job] = [MONTHLY_JOB]
