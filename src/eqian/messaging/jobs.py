"""Periodic jobs of messaging: escalate instructions past their deadline, and keep the registry
channels (one per station, station × category and service point) in step with the registry."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.ext.asyncio import AsyncSession

from eqian.core.scheduler import Job
from eqian.messaging import service


async def _escalate(session: AsyncSession, now: dt.datetime) -> int:
    return await service.escalate_overdue(session, now=now)


async def _channels(session: AsyncSession, now: dt.datetime) -> int:
    return await service.ensure_channels(session)


ESCALATE_JOB = Job(name="messaging.escalate_overdue", every_seconds=60, run=_escalate)
CHANNELS_JOB = Job(name="messaging.ensure_channels", every_seconds=300, run=_channels)
JOBS: list[Job] = [ESCALATE_JOB, CHANNELS_JOB]
