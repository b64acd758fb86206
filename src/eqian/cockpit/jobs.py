"""Scheduled work of cockpit: recompute dirty months of the rollups, and sweep recent months.

Both are idempotent: a refresh replaces a month's rows with the same rows; a sweep only marks.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy.ext.asyncio import AsyncSession

from eqian.cockpit import rollups
from eqian.core.scheduler import Job


async def _refresh(session: AsyncSession, now: dt.datetime) -> int:
    return await rollups.refresh_dirty(session)


async def _sweep(session: AsyncSession, now: dt.datetime) -> int:
    return await rollups.sweep(session, now)


REFRESH_JOB = Job(name="cockpit.refresh", every_seconds=rollups.REFRESH_SECONDS, run=_refresh)
SWEEP_JOB = Job(name="cockpit.sweep", every_seconds=rollups.SWEEP_SECONDS, run=_sweep)
JOBS: list[Job] = [SWEEP_JOB, REFRESH_JOB]
