"""SLA overdue flags (once, with notifications) and the incident resolved when its mediation case closes."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from eqian.core import outbox
from eqian.incidents import events
from eqian.incidents.jobs import flag_overdue
from eqian.incidents.models import Incident, IncidentEvent
from eqian.notifications.models import Notification
from tests.incidents.helpers import add_incident, make_inc_world

T0 = dt.datetime(2026, 5, 1, 1, tzinfo=dt.UTC)


async def test_overdue_flagged_once_and_told(
    db: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    iw = await make_inc_world(db)
    w = iw.world
    late = await add_incident(
        db, station_id=w.station_a, unit_id=w.units["a1"], reported_at=T0, status="assigned", sla_hours=24
    )
    await add_incident(
        db, station_id=w.station_a, unit_id=w.units["a1"], reported_at=T0, status="resolved", sla_hours=24
    )  # done: not overdue
    await add_incident(db, station_id=w.station_a, unit_id=w.units["a1"], reported_at=T0, sla_hours=24 * 30)
    now = T0 + dt.timedelta(days=2)
    async with sessionmaker() as s:
        assert await flag_overdue(s, now=now) == 1
    async with sessionmaker() as s:
        assert await flag_overdue(s, now=now + dt.timedelta(hours=5)) == 0
    incident = await db.get(Incident, late)
    assert incident is not None
    assert incident.overdue_since == T0 + dt.timedelta(hours=24)
    events.register()
    await outbox.dispatch_pending(sessionmaker)
    told = set(await db.scalars(select(Notification.user_id).where(Notification.kind == "incidents.overdue")))
    assert {w.users["unit_security"].id, w.users["station_officer"].id, w.users["bureau_admin"].id} <= told
    assert w.users["station_officer_b"].id not in told


async def test_mediation_case_closed_resolves_the_incident(
    db: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    iw = await make_inc_world(db)
    w = iw.world
    incident_id = await add_incident(
        db, station_id=w.station_b, reported_at=T0, route="mediation", status="assigned"
    )
    events.register()
    at = T0 + dt.timedelta(days=3)
    payload = {
        "case_id": 7,
        "incident_id": incident_id,
        "station_id": w.station_b,
        "unit_id": None,
        "team_id": w.team,
        "dispute_type": "labor",
        "outcome": "agreement",
        "amount_recovered": "3000",
        "at": at.isoformat(),
    }
    async with sessionmaker() as s:
        outbox.emit(s, "mediation.case_closed", payload)
        outbox.emit(s, "mediation.case_closed", payload)  # delivered twice: resolved once
        await s.commit()
    await outbox.dispatch_pending(sessionmaker)
    db.expire_all()
    incident = await db.get(Incident, incident_id)
    assert incident is not None
    assert (incident.status, incident.resolved_at, incident.mediation_case_id) == ("resolved", at, 7)
    actions = list(
        await db.scalars(select(IncidentEvent.action).where(IncidentEvent.incident_id == incident_id))
    )
    assert actions == ["resolved"]
