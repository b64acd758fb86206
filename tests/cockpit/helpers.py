"""Setup of the cockpit tests: the district, headers per role, raw rows with chosen times."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from tests.cockpit.raw_facts import raw
from tests.hazards.helpers import HzWorld, make_hz_world

API = "/api/v1/cockpit"
SOURCES = ("eqian.hazards.facts", "tests.cockpit.raw_facts")
UTC = dt.UTC


def at(year: int, month: int, day: int, hour: int = 4) -> dt.datetime:
    return dt.datetime(year, month, day, hour, tzinfo=UTC)


@dataclass
class CockpitWorld:
    hz: HzWorld
    headers: dict[str, dict[str, str]] = field(default_factory=dict)

    def unit(self, label: str) -> int:
        return self.hz.world.units[label]


async def make_cockpit_world(db: AsyncSession) -> CockpitWorld:
    hz = await make_hz_world(db)
    return CockpitWorld(hz=hz, headers=hz.headers)


async def add_raw(
    db: AsyncSession,
    when: dt.datetime,
    metric: str,
    value: float = 1,
    *,
    station_id: int | None,
    unit_id: int | None,
) -> None:
    await db.execute(
        insert(raw).values(at=when, station_id=station_id, unit_id=unit_id, metric=metric, value=value)
    )
    await db.commit()
