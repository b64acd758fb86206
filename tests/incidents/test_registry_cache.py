"""The registry the linker holds in memory: rebuilt by one request at a time, never holding up the
worker while it is built, and never older than what a request that asks for it fresh committed."""

from __future__ import annotations

import asyncio

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from eqian.incidents import linking
from eqian.organizations.models import Unit
from tests.incidents.helpers import make_inc_world


async def _linker(sessionmaker: async_sessionmaker[AsyncSession], *, fresh: bool = False) -> linking.Linker:
    async with sessionmaker() as session:
        return await linking.get_linker(session, fresh=fresh)


async def test_a_registry_that_aged_out_is_rebuilt_once_while_the_other_requests_go_on(
    db: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    await make_inc_world(db)
    old = await _linker(sessionmaker)
    old.built -= linking.CACHE_SECONDS + 1  # as if half a minute had passed
    old.checked -= linking.CACHE_SECONDS + 1
    got = await asyncio.gather(*(_linker(sessionmaker) for _ in range(12)))
    rebuilt = {id(linker) for linker in got} - {id(old)}
    assert len(rebuilt) == 1  # one rebuild; the requests meanwhile were served the registry they had
    assert await _linker(sessionmaker) is next(g for g in got if g is not old)


async def test_a_fresh_request_sees_the_unit_committed_before_it_asked(
    db: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    iw = await make_inc_world(db)
    before = await _linker(sessionmaker)
    unit = Unit(
        name="新到织里童装有限公司",
        credit_code="91330502MA2NEW0001",
        address="织里镇新开路1号",
        station_id=iw.world.station_a,
        category_code="garment",
    )
    db.add(unit)
    await db.commit()
    assert unit.id not in before.units  # the cached registry does not know it yet
    # Two fresh requests at once, as two officers filing for the new unit: both see it.
    got = await asyncio.gather(_linker(sessionmaker, fresh=True), _linker(sessionmaker, fresh=True))
    assert all(unit.id in linker.units for linker in got)


async def test_building_a_city_registry_lets_the_event_loop_serve_others() -> None:
    rows = [
        (
            i,
            f"湖州第{i}号织造有限公司",
            f"9133050{i:011d}",
            f"织里镇大港路{i}号",
            1 + i % 40,
            "manufacturing",
            None,
            None,
        )
        for i in range(1, 5_001)
    ]
    ticks = 0
    building = True

    async def other_requests() -> None:
        nonlocal ticks
        while building:
            ticks += 1
            await asyncio.sleep(0)

    served = asyncio.create_task(other_requests())
    await asyncio.sleep(0)
    linker = await linking.Linker.build(rows)
    building = False
    await served
    assert len(linker.units) == 5_000
    assert ticks >= 5_000 // linking.YIELD_EVERY  # a turn for the others every YIELD_EVERY units
