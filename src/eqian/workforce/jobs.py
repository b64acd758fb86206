"""The periodic reminder job of workforce (schedule it hourly; it is idempotent).

Two reasons, each emitted once per person and occasion (``Reminder`` remembers what was sent):

* ``registration_due`` — a person still active at a unit and unregistered whose registration
  deadline (``hired_on + window``) lies within ``LEAD_DAYS`` before or after today;
* ``permit_expiring`` — a person still active somewhere whose residence permit expires within
  ``PERMIT_LEAD_DAYS`` from today.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from eqian.core import outbox
from eqian.core.ids import mask_resident_id
from eqian.core.scheduler import Job
from eqian.organizations.models import Unit
from eqian.workforce import service
from eqian.workforce.events import REMINDER_TOPIC
from eqian.workforce.models import Employment, Person, Reminder, Residence

LOCAL_TZ = ZoneInfo("Asia/Shanghai")
LEAD_DAYS = 7
PERMIT_LEAD_DAYS = 30
REMIND_LOCK = 7_365_010  # advisory lock key of the job on PostgreSQL


async def remind(session: AsyncSession, *, now: dt.datetime) -> int:
    """Emit the reminders not yet sent; returns how many were emitted, and commits."""
    if session.get_bind().dialect.name == "postgresql":
        # Every worker runs this job, all of them at start-up: one at a time, so the second reads
        # the first's reminders instead of inserting them again (a unique violation, found by
        # the soak).
        await session.execute(select(func.pg_advisory_xact_lock(REMIND_LOCK)))
    today = now.astimezone(LOCAL_TZ).date()
    window = service.registration_window_days()
    # hired_on + window within [today − lead, today + lead]  ⇔  hired_on within a date range.
    earliest = today - dt.timedelta(days=window + LEAD_DAYS)
    latest = today - dt.timedelta(days=window - LEAD_DAYS)
    base = (
        select(
            Person.id,
            Person.name,
            Person.id_number,
            Employment.id,
            Employment.hired_on,
            Unit.id,
            Unit.name,
            Unit.station_id,
            Residence.permit_expires_on,
        )
        .join(Employment, Employment.person_id == Person.id)
        .join(Unit, Unit.id == Employment.unit_id)
        .outerjoin(Residence, Residence.person_id == Person.id)
        .where(Employment.left_on.is_(None))
    )
    due = base.where(
        or_(Residence.status.is_(None), Residence.status == "unregistered"),
        Employment.hired_on >= earliest,
        Employment.hired_on <= latest,
    )
    expiring = base.where(
        Residence.status == "permit_issued",
        and_(
            Residence.permit_expires_on >= today,
            Residence.permit_expires_on <= today + dt.timedelta(days=PERMIT_LEAD_DAYS),
        ),
    )
    candidates: list[tuple[str, str, dt.date, tuple[object, ...]]] = []
    for row in (await session.execute(due)).all():
        candidates.append(("registration_due", str(row[3]), row[4] + dt.timedelta(days=window), tuple(row)))
    for row in (await session.execute(expiring)).all():
        assert row[8] is not None  # noqa: S101 - filtered above
        candidates.append(("permit_expiring", row[8].isoformat(), row[8], tuple(row)))
    if not candidates:
        await session.commit()
        return 0
    person_ids = sorted({int(str(c[3][0])) for c in candidates})
    sent: set[tuple[int, str, str]] = set()
    for i in range(0, len(person_ids), 500):
        rows = await session.execute(
            select(Reminder.person_id, Reminder.reason, Reminder.ref).where(
                Reminder.person_id.in_(person_ids[i : i + 500])
            )
        )
        sent.update((a, b, c) for a, b, c in rows.all())
    emitted = 0
    for reason, ref, due_on, fields in candidates:
        person_id, name, id_number, _emp_id, _hired, unit_id, unit_name, station_id, _exp = fields
        key = (int(str(person_id)), reason, ref)
        if key in sent:
            continue
        sent.add(key)
        session.add(Reminder(person_id=key[0], reason=reason, ref=ref, unit_id=unit_id, due_on=due_on))
        outbox.emit(
            session,
            REMINDER_TOPIC,
            {
                "reason": reason,
                "person_id": key[0],
                "name": name,
                "id_number_masked": mask_resident_id(str(id_number)),
                "unit_id": unit_id,
                "unit_name": unit_name,
                "station_id": station_id,
                "due_on": due_on.isoformat(),
            },
        )
        emitted += 1
    await session.commit()
    return emitted


async def _remind_job(session: AsyncSession, now: dt.datetime) -> int:
    return await remind(session, now=now)


# For ``web.handlers.periodic_jobs()``: hourly is plenty for deadlines counted in days.
REMIND_JOB = Job(name="workforce.remind", every_seconds=3600, run=_remind_job)
