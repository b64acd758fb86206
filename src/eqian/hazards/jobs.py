"""Scheduled work of hazards: escalate the ones past their rectification deadline.

Idempotent: a hazard's ``escalation_level`` only rises, and the outbox event ``hazards.overdue`` is
emitted once per level reached, so running the job twice in a row sends nothing new.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from eqian.core import audit, outbox
from eqian.core.scheduler import Job
from eqian.hazards.models import Hazard, HazardEvent
from eqian.hazards.service import is_overdue, load_config
from eqian.organizations.models import Unit

OVERDUE_TOPIC = "hazards.overdue"
BATCH = 1000


def level_for(deadline: dt.datetime, now: dt.datetime) -> int:
    """1 as soon as the deadline has passed, +1 per ``days_per_level`` days more, up to ``max_level``."""
    cfg = load_config()
    if now <= deadline:
        return 0
    return min(cfg.max_level, 1 + (now - deadline).days // cfg.days_per_level)


async def escalate_overdue(session: AsyncSession, *, now: dt.datetime) -> int:
    """Raise the level of every overdue, unverified hazard whose level is behind; one event each. Commits."""
    rows = await session.execute(
        select(Hazard, Unit.station_id, Unit.joint_zone_id)
        .join(Unit, Unit.id == Hazard.unit_id)
        .where(is_overdue(now), Hazard.escalation_level < load_config().max_level)
        .order_by(Hazard.id)
        # Several workers run this job: a second one waits and reads the level the first set, so
        # no level is escalated (and announced) twice.
        .with_for_update(of=Hazard)
    )
    escalated = 0
    for hazard, station_id, zone_id in rows:
        level = level_for(hazard.deadline, now)
        if level <= hazard.escalation_level:
            continue
        hazard.escalation_level = level
        if hazard.overdue_since is None:
            hazard.overdue_since = hazard.deadline
        session.add(HazardEvent(hazard_id=hazard.id, action="escalated", note=f"level {level}", at=now))
        outbox.emit(
            session,
            OVERDUE_TOPIC,
            {
                "hazard_id": hazard.id,
                "unit_id": hazard.unit_id,
                "station_id": station_id,
                "zone_id": zone_id,
                "level": level,
            },
        )
        await audit.record(
            session,
            actor_id=None,
            actor_name="system",
            action="hazards.hazard.escalated",
            entity="hz_hazard",
            entity_id=hazard.id,
            changes={"escalation_level": level},
            ip=None,
        )
        escalated += 1
    await session.commit()
    return escalated


async def _escalate_job(session: AsyncSession, now: dt.datetime) -> int:
    return await escalate_overdue(session, now=now)


# For ``web.handlers.periodic_jobs()``: hourly is plenty for deadlines counted in days.
ESCALATE_JOB = Job(name="hazards.escalate_overdue", every_seconds=3600, run=_escalate_job)
