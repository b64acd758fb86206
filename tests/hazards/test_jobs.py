"""Escalation of overdue hazards: once per level, idempotent, and the right people are told."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from eqian.core import outbox
from eqian.core.audit import AuditLog
from eqian.hazards import events
from eqian.hazards.jobs import OVERDUE_TOPIC, escalate_overdue, level_for
from eqian.hazards.models import Hazard
from eqian.notifications.models import Notification
from tests.hazards.helpers import add_hazard, make_hz_world

T0 = dt.datetime(2026, 5, 1, 1, tzinfo=dt.UTC)


async def _events(db: AsyncSession) -> list[dict[str, object]]:
    rows = await db.scalars(
        select(outbox.OutboxEvent)
        .where(outbox.OutboxEvent.topic == OVERDUE_TOPIC)
        .order_by(outbox.OutboxEvent.id)
    )
    return [e.payload for e in rows]


def test_levels() -> None:
    deadline = T0
    assert level_for(deadline, T0) == 0
    assert level_for(deadline, T0 + dt.timedelta(minutes=1)) == 1
    assert level_for(deadline, T0 + dt.timedelta(days=7)) == 2
    assert level_for(deadline, T0 + dt.timedelta(days=100)) == 3


async def test_escalation_is_idempotent(
    db: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    hz = await make_hz_world(db)
    a1, b1 = hz.world.units["a1"], hz.world.units["b1"]
    late = await add_hazard(db, a1, found_at=T0, severity="critical")  # deadline T0 + 1 day
    submitted = await add_hazard(db, b1, found_at=T0, severity="critical", status="fix_submitted")
    await add_hazard(db, a1, found_at=T0, severity="low")  # deadline T0 + 15 days: not yet
    await add_hazard(db, a1, found_at=T0, severity="critical", status="verified", verified_at=T0)

    now = T0 + dt.timedelta(days=2)
    async with sessionmaker() as s:
        assert await escalate_overdue(s, now=now) == 2
    async with sessionmaker() as s:
        assert await escalate_overdue(s, now=now) == 0  # nothing new the second time
    async with sessionmaker() as s:
        assert await escalate_overdue(s, now=now + dt.timedelta(days=3)) == 0  # same level
    payloads = await _events(db)
    assert sorted((p["hazard_id"], p["level"]) for p in payloads) == [(late, 1), (submitted, 1)]
    hazard = await db.get(Hazard, late)
    assert hazard is not None
    assert hazard.escalation_level == 1
    assert hazard.overdue_since == T0 + dt.timedelta(days=1)

    later = T0 + dt.timedelta(days=9)  # 8 days past the deadline: level 2
    async with sessionmaker() as s:
        assert await escalate_overdue(s, now=later) == 2
    async with sessionmaker() as s:
        assert await escalate_overdue(s, now=later) == 0
    assert len(await _events(db)) == 4
    audited = await db.scalar(
        select(func.count()).select_from(AuditLog).where(AuditLog.action == "hazards.hazard.escalated")
    )
    assert audited == 4

    # The handler tells the unit's security staff, its liaison officer and the station's officers.
    events.register()
    while await outbox.dispatch_pending(sessionmaker) > 0:
        pass
    users = hz.world.users
    rows = await db.execute(
        select(Notification.user_id, Notification.event_id).where(Notification.kind == OVERDUE_TOPIC)
    )
    told_about_a1 = {uid for uid, _ in rows}
    expected_a1 = {
        users[n].id for n in ("unit_security", "liaison_officer", "station_officer", "bureau_admin")
    }
    assert expected_a1 <= told_about_a1
    assert users["service_point_staff"].id not in told_about_a1
    assert users["mediator"].id not in told_about_a1
    b1_told = set(
        await db.scalars(
            select(Notification.user_id)
            .join(outbox.OutboxEvent, outbox.OutboxEvent.id == Notification.event_id)
            .where(Notification.kind == OVERDUE_TOPIC)
        )
    )
    assert users["unit_security_b1"].id in b1_told
    assert users["station_officer_b"].id in b1_told
    # Dispatching again sends nothing more.
    before = await db.scalar(select(func.count()).select_from(Notification))
    while await outbox.dispatch_pending(sessionmaker) > 0:
        pass
    assert await db.scalar(select(func.count()).select_from(Notification)) == before


async def test_scheduler_job_runs_escalation(
    db: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    from eqian.hazards.jobs import ESCALATE_JOB

    hz = await make_hz_world(db)
    await add_hazard(db, hz.world.units["a1"], found_at=T0, severity="critical")
    async with sessionmaker() as s:
        assert await ESCALATE_JOB.run(s, T0 + dt.timedelta(days=2)) == 1
    async with sessionmaker() as s:
        assert await ESCALATE_JOB.run(s, T0 + dt.timedelta(days=2)) == 0
