"""Demo workforce: deterministic, valid identifiers, one active stay per person, risk-driven gaps."""

from __future__ import annotations

import datetime as dt
import itertools
from collections import Counter

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from eqian.core.ids import is_valid_mobile, is_valid_resident_id
from eqian.demo.workforce import seed_workforce
from eqian.workforce.models import Employment, Person, Residence
from tests.factories import make_world

TODAY = dt.date(2026, 6, 30)


async def _snapshot(db: AsyncSession) -> list[tuple[object, ...]]:
    rows = await db.execute(
        select(
            Person.id_number,
            Person.name,
            Employment.unit_id,
            Employment.hired_on,
            Employment.left_on,
            Residence.status,
        )
        .join(Employment, Employment.person_id == Person.id)
        .join(Residence, Residence.person_id == Person.id)
        .order_by(Employment.id)
    )
    return [tuple(r) for r in rows.all()]


async def test_seed_is_deterministic_and_valid(db: AsyncSession) -> None:
    await make_world(db)
    counts = await seed_workforce(db, seed=7, today=TODAY)
    assert counts["persons"] > 100
    assert counts["employments"] > counts["persons"]  # some people moved or came back
    first = await _snapshot(db)
    persons = (await db.scalars(select(Person))).all()
    assert all(is_valid_resident_id(p.id_number) and is_valid_mobile(p.phone) for p in persons)
    emps = (await db.scalars(select(Employment))).all()
    active = Counter(e.person_id for e in emps if e.left_on is None)
    assert max(active.values()) == 1
    assert all(e.hired_on <= TODAY and (e.left_on is None or e.left_on >= e.hired_on) for e in emps)
    by_person: dict[int, list[Employment]] = {}
    for e in emps:
        by_person.setdefault(e.person_id, []).append(e)
    for stays in by_person.values():  # stays never overlap
        stays.sort(key=lambda e: e.hired_on)
        for a, b in itertools.pairwise(stays):
            assert a.left_on is not None
            assert a.left_on < b.hired_on
    assert len({e.unit_id for stays in by_person.values() if len(stays) > 1 for e in stays}) > 1
    statuses = Counter(r.status for r in (await db.scalars(select(Residence))).all())
    assert statuses["unregistered"] > 0
    assert statuses["registered"] + statuses["permit_issued"] > statuses["unregistered"]
    # same seed, same world
    for table in (Employment, Residence, Person):
        await db.execute(delete(table))
    assert await seed_workforce(db, seed=7, today=TODAY) == counts
    assert await _snapshot(db) == first
