"""Periodic jobs of incidents: flag the ones past their SLA, and forget old idempotency keys.

Idempotent: an incident's ``overdue_since`` is set once, and ``incidents.overdue`` is emitted only
then, so a second run (or another worker) sends nothing new.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from eqian.core import audit, idempotency, outbox
from eqian.core.scheduler import Job
from eqian.incidents.models import Incident, IncidentEvent
from eqian.incidents.service import OVERDUE_TOPIC, is_overdue

BATCH = 1000


async def flag_overdue(session: AsyncSession, *, now: dt.datetime) -> int:
    """Mark every open incident whose SLA has passed and is not flagged yet; one event each. Commits."""
    flagged = 0
    while True:
        rows = list(
            await session.scalars(
                select(Incident)
                .where(is_overdue(now), Incident.overdue_since.is_(None))
                .order_by(Incident.id)
                .limit(BATCH)
                # Every worker runs this job (all at once after a restart): a second one waits for
                # the first's commit and then no longer sees the rows it flagged, so no incident
                # is flagged, and its overdue event emitted, twice.
                .with_for_update(of=Incident)
            )
        )
        for incident in rows:
            incident.overdue_since = incident.due_at
            session.add(
                IncidentEvent(
                    incident_id=incident.id,
                    action="overdue",
                    from_status=incident.status,
                    to_status=incident.status,
                    note=f"超过处置时限 {incident.sla_hours} 小时",
                    at=now,
                )
            )
            outbox.emit(
                session,
                OVERDUE_TOPIC,
                {
                    "incident_id": incident.id,
                    "station_id": incident.station_id,
                    "unit_id": incident.unit_id,
                    "route": incident.route,
                    "status": incident.status,
                    "assignee_id": incident.assignee_id,
                    "due_at": incident.due_at.isoformat(),
                    "at": now.isoformat(),
                },
            )
        if rows:
            await audit.record(
                session,
                actor_id=None,
                actor_name="system",
                action="incidents.incident.overdue",
                entity="incident",
                entity_id=None,
                changes={"incident_ids": [i.id for i in rows]},
                ip=None,
            )
        await session.commit()
        flagged += len(rows)
        if len(rows) < BATCH:
            return flagged


async def _flag_job(session: AsyncSession, now: dt.datetime) -> int:
    return await flag_overdue(session, now=now)


async def _purge_job(session: AsyncSession, now: dt.datetime) -> int:
    return await idempotency.purge(session, now=now)


# SLAs are counted in hours (some in one hour): every five minutes is enough.
OVERDUE_JOB = Job(name="incidents.flag_overdue", every_seconds=300, run=_flag_job)
PURGE_JOB = Job(name="core.idempotency_purge", every_seconds=3600, run=_purge_job)

JOBS: list[Job] = [OVERDUE_JOB, PURGE_JOB]
