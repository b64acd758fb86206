"""Compliance arithmetic on a hand-built case, and the reminder job's idempotence and recipients."""

from __future__ import annotations

import datetime as dt

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from eqian.core import outbox
from eqian.core.permissions import SYSTEM, Principal
from eqian.notifications.models import Notification
from eqian.workforce import jobs, service
from eqian.workforce.models import Employment, Person, Residence
from tests.factories import bearer, make_world
from tests.workforce.helpers import assert_no_pii, rid

AS_OF = dt.date(2025, 6, 30)


async def _person(db: AsyncSession, n: int, registered_on: dt.date | None, **res: object) -> int:
    person = Person(
        id_number=rid(n),
        name=f"工{n}",
        phone=f"139{n:08d}",
        birth_date=dt.date(1990, 1, 1),
        home_region="341221",
    )
    db.add(person)
    await db.flush()
    status = str(res.pop("status", "registered" if registered_on else "unregistered"))
    db.add(Residence(person_id=person.id, status=status, registered_on=registered_on, **res))
    await db.flush()
    return person.id


async def test_compliance_arithmetic(db: AsyncSession, client: httpx.AsyncClient) -> None:
    w = await make_world(db)
    a1, b1 = w.units["a1"], w.units["b1"]
    d = dt.date
    cases = [
        # (unit, hired_on, registered_on)
        (a1, d(2025, 1, 10), d(2025, 1, 20)),  # registered after 10 days: compliant
        (a1, d(2025, 2, 1), d(2025, 3, 13)),  # 40 days: late
        (a1, d(2025, 3, 1), None),  # never: late
        (a1, d(2025, 6, 25), None),  # window still open: pending
        (a1, d(2024, 6, 1), d(2024, 6, 2)),  # hired before the period: not counted
        (b1, d(2025, 4, 1), d(2024, 1, 1)),  # registered before the hire: compliant
        (b1, d(2025, 4, 10), d(2025, 5, 10)),  # exactly 30 days: compliant
    ]
    for n, (unit, hired, registered) in enumerate(cases):
        pid = await _person(db, n, registered)
        db.add(Employment(person_id=pid, unit_id=unit, hired_on=hired))
    await db.commit()
    q = service.ComplianceQuery(d(2025, 1, 1), AS_OF, as_of=AS_OF, window_days=30)
    report = await service.compliance(db, SYSTEM, q)
    rows = {r.key_id: (r.hires, r.registered_in_window, r.pending, r.rate) for r in report.rows}
    assert rows == {a1: (4, 1, 1, round(1 / 3, 4)), b1: (2, 2, 0, 1.0)}
    assert (
        report.total.hires,
        report.total.registered_in_window,
        report.total.pending,
        report.total.rate,
    ) == (6, 3, 1, 0.6)
    stations = await service.compliance(db, SYSTEM, q, by="station")
    assert {r.key_id: r.hires for r in stations.rows} == {w.station_a: 4, w.station_b: 2}
    mine = await service.compliance(db, Principal.of(w.users["unit_security"]), q)
    assert [r.key_id for r in mine.rows] == [a1]
    h = await bearer(db, w.users["station_officer"])
    resp = await client.get(
        "/api/v1/workers/compliance", params={"from": "2025-01-01", "to": "2025-06-30"}, headers=h
    )
    assert resp.status_code == 200
    assert [r["key_id"] for r in resp.json()["rows"]] == [a1]
    backwards = await client.get(
        "/api/v1/workers/compliance", params={"from": "2025-06-01", "to": "2025-01-01"}, headers=h
    )
    assert backwards.status_code == 422


async def test_reminders_once_and_to_the_right_people(
    db: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    w = await make_world(db)
    now = dt.datetime(2025, 6, 30, 2, 0, tzinfo=dt.UTC)  # 10:00 in Zhili
    today = dt.date(2025, 6, 30)
    due = await _person(db, 1, None)
    db.add(Employment(person_id=due, unit_id=w.units["a1"], hired_on=today - dt.timedelta(days=25)))
    fresh = await _person(db, 2, None)  # hired yesterday: not near the deadline yet
    db.add(Employment(person_id=fresh, unit_id=w.units["a1"], hired_on=today - dt.timedelta(days=1)))
    permit = await _person(
        db,
        3,
        today - dt.timedelta(days=300),
        status="permit_issued",
        permit_no="P3",
        permit_expires_on=today + dt.timedelta(days=10),
    )
    db.add(Employment(person_id=permit, unit_id=w.units["b1"], hired_on=today - dt.timedelta(days=300)))
    gone = await _person(db, 4, None)  # left: no reminder
    db.add(
        Employment(
            person_id=gone, unit_id=w.units["a1"], hired_on=today - dt.timedelta(days=25), left_on=today
        )
    )
    await db.commit()
    async with sessionmaker() as s:
        assert await jobs.remind(s, now=now) == 2
    async with sessionmaker() as s:
        assert await jobs.remind(s, now=now) == 0
    async with sessionmaker() as s:
        assert await jobs.remind(s, now=now + dt.timedelta(days=2)) == 0
    assert await outbox.dispatch_pending(sessionmaker) == 2
    notes = (await db.scalars(select(Notification))).all()
    by_user = {(n.user_id, n.title) for n in notes}
    users = w.users
    assert by_user == {
        (users["unit_security"].id, "员工居住登记即将到期"),
        (users["station_officer"].id, "员工居住登记即将到期"),
        (users["station_officer_b"].id, "员工居住证即将到期"),
    }
    for n in notes:
        assert_no_pii(n.body)


async def test_the_scheduled_job_runs_remind(db: AsyncSession) -> None:
    await make_world(db)
    assert jobs.REMIND_JOB.every_seconds == 3600
    async with AsyncSession(db.bind) as s:
        assert await jobs.REMIND_JOB.run(s, dt.datetime(2025, 6, 30, tzinfo=dt.UTC)) == 0
