"""The monthly facts of hazards, workforce, activities and environment on hand-built rows: every
figure checked against the rows, at the edges of the (Asia/Shanghai) month."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

from sqlalchemy.ext.asyncio import AsyncSession

from eqian.activities.facts import monthly_facts as activity_facts
from eqian.activities.models import Activity, ActivityInvitation
from eqian.core.facts import Fact, collect
from eqian.core.months import bounds as month_bounds
from eqian.environment.facts import monthly_facts as environment_facts
from eqian.environment.models import EnvAlert
from eqian.hazards.facts import monthly_facts as hazard_facts
from eqian.hazards.models import Hazard, Inspection
from eqian.safety_index.compute import load_model, score_unit
from eqian.workforce.facts import monthly_facts as workforce_facts
from eqian.workforce.models import Employment, Person, Residence
from tests.factories import make_world
from tests.safety_index.helpers import LOCAL, local

START, END = month_bounds("2026-03")


def table(facts: list[Fact]) -> dict[tuple[int | None, int | None, str], float]:
    out: dict[tuple[int | None, int | None, str], float] = defaultdict(float)
    for f in facts:
        out[(f.station_id, f.unit_id, f.metric)] += f.value
    return dict(out)


async def test_hazard_facts(db: AsyncSession) -> None:
    w = await make_world(db)
    a1, b1, sa, sb = w.units["a1"], w.units["b1"], w.station_a, w.station_b

    def hz(unit: int, found: dt.datetime, deadline: dt.datetime, verified: dt.datetime | None) -> Hazard:
        return Hazard(
            unit_id=unit,
            description="x",
            severity="low",
            found_at=found,
            deadline=deadline,
            verified_at=verified,
            status="verified" if verified else "open",
        )

    db.add_all(
        [
            hz(a1, local(2026, 3, 1, 0), local(2026, 3, 5), local(2026, 3, 3, 0)),  # found+fixed, 2 days
            hz(a1, local(2026, 2, 10), local(2026, 2, 20), local(2026, 3, 12)),  # Feb find fixed in Mar: 30 d
            hz(a1, local(2026, 2, 27), local(2026, 3, 10), None),  # overdue and open at month end
            hz(a1, local(2026, 3, 20), local(2026, 4, 20), None),  # found, not yet due
            hz(b1, local(2026, 3, 2), local(2026, 3, 9), local(2026, 4, 2)),  # fixed only in April: overdue
            hz(b1, local(2026, 2, 28, 23), local(2026, 3, 1), local(2026, 3, 31, 23)),  # Feb find
            hz(b1, local(2026, 4, 1, 0), local(2026, 4, 2), None),  # April (local) find: outside
        ]
    )
    db.add_all(
        [
            Inspection(unit_id=a1, kind="self_inspection", inspected_at=local(2026, 3, 31, 23)),
            Inspection(unit_id=a1, kind="self_inspection", inspected_at=local(2026, 4, 1, 1)),
            Inspection(unit_id=a1, kind="inspection", inspected_at=local(2026, 3, 15)),
        ]
    )
    await db.commit()
    got = table(await hazard_facts(db, START, END))
    assert got == {
        (sa, a1, "hazards.found"): 2,
        (sa, a1, "hazards.rectified"): 2,
        (sa, a1, "hazards.rectify_days_sum"): 32.0,
        (sa, a1, "hazards.overdue_open"): 1,
        (sa, a1, "hazards.self_inspections"): 1,
        (sb, b1, "hazards.found"): 1,
        (sb, b1, "hazards.rectified"): 1,
        (sb, b1, "hazards.rectify_days_sum"): 31.0,
        (sb, b1, "hazards.overdue_open"): 1,
    }


async def test_workforce_activity_environment_facts(db: AsyncSession) -> None:
    w = await make_world(db)
    a1, a2, sa = w.units["a1"], w.units["a2"], w.station_a
    people = [
        Person(
            id_number=f"33050219900101{n:03d}X"[:18],
            name=f"工{n}",
            birth_date=dt.date(1990, 1, 1),
            home_region="330502",
        )
        for n in range(5)
    ]
    db.add_all(people)
    await db.flush()
    hires = [
        (people[0], a1, dt.date(2026, 3, 1), dt.date(2026, 3, 31)),  # 30 days: on time
        (people[1], a1, dt.date(2026, 3, 1), dt.date(2026, 4, 1)),  # 31 days: late
        (people[2], a1, dt.date(2026, 3, 31), None),  # not registered
        (people[3], a2, dt.date(2026, 3, 10), dt.date(2025, 1, 1)),  # registered before the hire
        (people[4], a2, dt.date(2026, 2, 28), None),  # a February hire
    ]
    for person, unit, hired, registered in hires:
        db.add(Employment(person_id=person.id, unit_id=unit, hired_on=hired))
        db.add(
            Residence(
                person_id=person.id,
                status="registered" if registered else "unregistered",
                registered_on=registered,
            )
        )
    held = Activity(
        station_id=sa,
        kind="roundtable",
        title="恳谈",
        starts_at=local(2026, 3, 5),
        ends_at=local(2026, 3, 5, 12),
        status="held",
    )
    cancelled = Activity(
        station_id=sa,
        kind="safety_training",
        title="培训",
        starts_at=local(2026, 3, 6),
        ends_at=local(2026, 3, 6, 12),
        status="cancelled",
    )
    april = Activity(
        station_id=sa,
        kind="joint_patrol",
        title="巡逻",
        starts_at=local(2026, 4, 1, 0),
        ends_at=local(2026, 4, 1, 2),
        status="held",
    )
    db.add_all([held, cancelled, april])
    await db.flush()
    db.add_all(
        [
            ActivityInvitation(activity_id=held.id, unit_id=a1, attended=True),
            ActivityInvitation(activity_id=held.id, unit_id=a2, attended=False),
            ActivityInvitation(activity_id=cancelled.id, unit_id=a1),
            ActivityInvitation(activity_id=april.id, unit_id=a1, attended=True),
        ]
    )
    db.add_all(
        [
            EnvAlert(
                fingerprint="f1",
                unit_id=a1,
                kind="k",
                severity="red",
                message="m",
                evidence={},
                created_at=local(2026, 3, 9),
            ),
            EnvAlert(
                fingerprint="f2",
                unit_id=None,
                kind="k",
                severity="amber",
                message="m",
                evidence={},
                created_at=local(2026, 3, 9),
            ),
            EnvAlert(
                fingerprint="f3",
                unit_id=a1,
                kind="k",
                severity="red",
                message="m",
                evidence={},
                created_at=local(2026, 2, 9),
            ),
        ]
    )
    await db.commit()
    assert table(await workforce_facts(db, START, END)) == {
        (sa, a1, "workforce.hired"): 3,
        (sa, a1, "workforce.registered_on_time"): 1,
        (sa, a1, "workforce.registration_late"): 1,
        (sa, a1, "workforce.unregistered"): 1,
        (sa, a1, "workforce.registration_pending"): 0,  # March hires: their windows are long over
        (sa, a2, "workforce.hired"): 1,
        (sa, a2, "workforce.registered_on_time"): 1,
        (sa, a2, "workforce.registration_late"): 0,
        (sa, a2, "workforce.unregistered"): 0,
        (sa, a2, "workforce.registration_pending"): 0,
    }
    assert table(await activity_facts(db, START, END)) == {
        (sa, a1, "activities.invited"): 1,
        (sa, a1, "activities.attended"): 1,
        (sa, a2, "activities.invited"): 1,
        (sa, a2, "activities.attended"): 0,
    }
    assert table(await environment_facts(db, START, END)) == {
        (sa, a1, "environment.alerts"): 1,
        (None, None, "environment.alerts"): 1,
    }
    # Through core.facts.collect, the four sources together (and the others' modules where they exist).
    names = (
        "eqian.hazards.facts",
        "eqian.workforce.facts",
        "eqian.activities.facts",
        "eqian.environment.facts",
    )
    assert len(table(await collect(db, START, END, names))) == 10 + 4 + 2


async def test_hires_still_inside_their_window_are_pending(db: AsyncSession) -> None:
    w = await make_world(db)
    a1, sa = w.units["a1"], w.station_a
    today = dt.datetime.now(LOCAL).date()
    person = Person(
        id_number="330502199001010000", name="新工", birth_date=dt.date(1990, 1, 1), home_region="330502"
    )
    db.add(person)
    await db.flush()
    db.add(Employment(person_id=person.id, unit_id=a1, hired_on=today - dt.timedelta(days=3)))
    db.add(Residence(person_id=person.id, status="unregistered"))
    await db.commit()
    start = dt.datetime.combine(today - dt.timedelta(days=3), dt.time(), LOCAL).astimezone(dt.UTC)
    got = table(await workforce_facts(db, start, start + dt.timedelta(days=4)))
    assert got[(sa, a1, "workforce.unregistered")] == 1
    assert got[(sa, a1, "workforce.registration_pending")] == 1
    # The index leaves a pending hire out of the registration rate: nothing to deduct yet.
    model = load_model()
    score = score_unit(model, {m: v for (_, _, m), v in got.items()}, unit_id=a1, month="2026-11")
    assert score.score == 100.0
