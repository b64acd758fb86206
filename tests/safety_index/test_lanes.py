"""Unpaced on PostgreSQL the facts pass reads two domains at once on two connections, with the same
sums as one connection gives; it never waits for a pool with no connection to spare. Domains that
offer their facts in bulk rows give the same facts and sums as their facts one by one."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pytest
import sqlalchemy
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from eqian.core.db import make_engine, make_sessionmaker
from eqian.core.facts import Fact, expand, load
from eqian.core.months import bounds as month_bounds
from eqian.core.pacing import Pacer
from eqian.hazards.models import Hazard
from eqian.safety_index import service
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
    assert two[units["a1"]]["incidents.police"] == 2


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
    """A domain's ``monthly_fact_rows`` are its facts; the index sums them as it would the facts."""
    await _month(db)
    start, end = month_bounds("2026-02")
    sources = load(NAMES)
    assert [s.rows is not None for s in sources] == [True, False, False, True]
    expected: dict[int, dict[str, float]] = defaultdict(dict)
    for source in sources:
        facts = await source.facts(db, start, end)
        if source.rows is not None:
            assert expand(await source.rows(db, start, end)) == facts
        for fact in facts:
            if fact.unit_id is not None:
                row = expected[fact.unit_id]
                row[fact.metric] = row.get(fact.metric, 0.0) + fact.value
    assert await service.unit_metrics(db, "2026-02", NAMES) == expected
    assert any("hazards.found" in v for v in expected.values())


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
