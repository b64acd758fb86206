"""Scheduled work of requests: flag the ones past their SLA and tell who handles them.

Idempotent: a request is flagged once (``overdue_since``), and the outbox event
``requests.overdue`` is emitted only when the flag is set.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from eqian.core import audit, outbox
from eqian.core.scheduler import Job
from eqian.requests.models import EnterpriseRequest, RequestEvent
from eqian.requests.service import OVERDUE_TOPIC, is_overdue, payload


async def flag_overdue(session: AsyncSession, *, now: dt.datetime) -> int:
    """Flag every open request past its due time that is not flagged yet; one event each. Commits."""
    rows = await session.scalars(
        select(EnterpriseRequest)
        .where(is_overdue(now), EnterpriseRequest.overdue_since.is_(None))
        .order_by(EnterpriseRequest.id)
        # Several workers run this job: a second one waits, then skips the rows the first flagged.
        .with_for_update(of=EnterpriseRequest)
    )
    flagged = 0
    for row in rows:
        row.overdue_since = now
        session.add(RequestEvent(request_id=row.id, action="overdue", note="", at=now))
        outbox.emit(session, OVERDUE_TOPIC, payload(row, now))
        await audit.record(
            session,
            actor_id=None,
            actor_name="system",
            action="requests.request.overdue",
            entity="enterprise_request",
            entity_id=row.id,
            changes={"due_at": row.due_at.isoformat()},
            ip=None,
        )
        flagged += 1
    await session.commit()
    return flagged


async def _flag_job(session: AsyncSession, now: dt.datetime) -> int:
    return await flag_overdue(session, now=now)


OVERDUE_JOB = Job(name="requests.flag_overdue", every_seconds=3600, run=_flag_job)
JOBS: list[Job] = [OVERDUE_JOB]
