"""Unpaced on PostgreSQL the facts pass reads two domains at once on two connections, with the same
sums as one connection gives; it never waits for a pool with no connection to spare. Every source's
bulk rows (a domain's own, or a test source's facts read as rows) are its facts."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pytest
import sqlalchemy
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from eqian.core.db import make_engine, make_sessionmaker
from eqian.core.facts import Fact, load, merged
from eqian.core.months import bounds as month_bounds
from eqian.core.pacing import Pacer
from eqian.hazards.models import Hazard
from eqian.safety_index import service
from tests.incidents.helpers import add_incident
from tests.safety_index import fake_facts
from tests.safety_index.helpers import local, world_with_b1_security

NAMES = ("eqian.hazards.facts", fake_facts.NAME, "eqian.incidents.facts", "eqian.messaging.facts")


@pytest.fixture(autouse=True)
def _facts() -> None:
    fake_facts.FACTS.clear()
    fake_facts.FAIL.clear()


async def _month(db: AsyncSession) -> dict[str, int]:
    w = await world_with_b1_security(db)
    a1, b1 = w.units["a1"], w.units["b1"]
    db.add_all(
        Hazard(
            unit_id=a1 if n % 3 else b1,
            description="消防通道堵塞",
            severity="high",
            found_at=local(2026, 2, 1 + n),
            deadline=local(2026, 2, 5 + n),
            status="open",
        )
        for n in range(12)
    )
    for n, category in enumerate(("labor", "labor", "fraud", "traffic")):
        day = local(2026, 2, 3 + n)
        await add_incident(
            db, station_id=w.station_a, unit_id=a1, reported_at=day, category=category, police=n > 1
        )
    await add_incident(db, station_id=w.station_b, reported_at=local(2026, 2, 9), category="traffic")
    await db.commit()
    fake_facts.FACTS["2026-02"] = [
        Fact(w.station_a, a1, "incidents.police", 2),
        Fact(w.station_b, b1, "messaging.instructions", 4),
        Fact(w.station_b, b1, "hazards.found", 1),  # summed with the hazards' own fact of b1
    ]
    return {"a1": a1, "b1": b1}


def _connections(engine: Any) -> set[int]:
    used: set[int] = set()
    sqlalchemy.event.listen(
        engine.sync_engine,
        "before_cursor_execute",
        lambda conn, *a: used.add(id(conn.connection.dbapi_connection)),
    )
    return used


async def test_two_lanes_sum_as_one(db: AsyncSession, database_url: str) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("one connection on SQLite: its writer holds the whole database")
    units = await _month(db)
    engine = make_engine(database_url)
    used = _connections(engine)
    try:
        async with make_sessionmaker(engine)() as session:
            two = await service.unit_metrics(session, "2026-02", NAMES)
        assert len(used) == 2
        used.clear()
        async with make_sessionmaker(engine)() as session:  # paced: one connection
            one = await service.unit_metrics(session, "2026-02", NAMES, pacer=Pacer(1e-6))
        assert len(used) == 1
    finally:
        await engine.dispose()
    assert two == one
    assert two[units["b1"]]["hazards.found"] == 1 + 4  # four of the twelve hazards, and the injected one
    assert two[units["a1"]]["incidents.police"] == 2 + 2  # the injected two and a1's own police calls


async def test_no_second_lane_from_a_pool_without_a_spare_connection(
    db: AsyncSession, database_url: str
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL only")
    await _month(db)
    engine = create_async_engine(database_url, pool_size=1, max_overflow=0, pool_timeout=2)
    used = _connections(engine)
    try:
        async with make_sessionmaker(engine)() as session:
            values = await service.unit_metrics(session, "2026-02", NAMES)
    finally:
        await engine.dispose()
    assert len(used) == 1
    assert values


async def test_the_bulk_rows_are_the_facts(db: AsyncSession) -> None:
    """A source's rows are its facts, and the index sums them per unit as the facts add up."""
    ids = await _month(db)
    start, end = month_bounds("2026-02")
    expected: dict[int, dict[str, float]] = defaultdict(dict)
    for source in load(NAMES):
        facts = await source.facts(db, start, end)
        assert _table(merged(await source.rows(db, start, end))) == _table(facts)
        for fact in facts:
            if fact.unit_id is not None:
                row = expected[fact.unit_id]
                row[fact.metric] = row.get(fact.metric, 0.0) + fact.value
    got = await service.unit_metrics(db, "2026-02", NAMES)
    assert {u: {m: v for m, v in d.items() if v} for u, d in got.items()} == expected
    # incidents: one block per category, the unit's totals summed across them
    a1 = expected[ids["a1"]]
    assert (a1["incidents.total"], a1["incidents.cat.labor"], a1["incidents.police"]) == (4, 2, 2 + 2)
    assert any("hazards.found" in v for v in expected.values())


def _table(facts: list[Fact]) -> dict[tuple[int | None, int | None, str], float]:
    out: dict[tuple[int | None, int | None, str], float] = defaultdict(float)
    for fact in facts:
        out[(fact.station_id, fact.unit_id, fact.metric)] += fact.value
    return {k: v for k, v in out.items() if v}


async def test_a_failing_domain_fails_the_pass_with_its_own_error(
    db: AsyncSession, database_url: str
) -> None:
    """The other lane is stopped before its connection is given back, and the caller sees the
    domain's error, not the session's complaint about a connection closed in use."""
    if not database_url.startswith("postgresql"):
        pytest.skip("two lanes on PostgreSQL only")
    await _month(db)
    fake_facts.FAIL.append(RuntimeError("facts source failed"))
    engine = make_engine(database_url)
    used = _connections(engine)
    try:
        async with make_sessionmaker(engine)() as session:
            with pytest.raises(RuntimeError, match="facts source failed"):
                await service.unit_metrics(session, "2026-02", NAMES)
        assert len(used) == 2
        fake_facts.FAIL.clear()
        async with make_sessionmaker(engine)() as session:  # the pool's connections still serve
            assert await service.unit_metrics(session, "2026-02", NAMES)
    finally:
        await engine.dispose()
