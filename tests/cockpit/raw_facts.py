"""A stand-in facts source for the cockpit tests: facts-like raw rows in a test-only table.

The incidents, mediation, requests and messaging domains are being written at the same time;
this table lets the tests insert rows with chosen times, stations and units for their metrics and
compare the cockpit with direct counts. Hazards use the real ``eqian.hazards.facts``.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Column, Float, Integer, MetaData, String, Table, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from eqian.core.db import UTCDateTime
from eqian.core.facts import Fact

metadata = MetaData()
raw = Table(
    "cockpit_test_raw",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("at", UTCDateTime(), nullable=False),
    Column("station_id", Integer, nullable=True),
    Column("unit_id", Integer, nullable=True),
    Column("metric", String(64), nullable=False),
    Column("value", Float, nullable=False),
)


async def monthly_facts(session: AsyncSession, start: dt.datetime, end: dt.datetime) -> list[Fact]:
    rows = await session.execute(
        select(raw.c.station_id, raw.c.unit_id, raw.c.metric, func.sum(raw.c.value))
        .where(raw.c.at >= start, raw.c.at < end)
        .group_by(raw.c.station_id, raw.c.unit_id, raw.c.metric)
    )
    return [Fact(s, u, m, float(v)) for s, u, m, v in rows]
