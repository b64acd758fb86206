"""Cockpit summary latency: answered from the rollups vs the naive GROUP BY over raw rows.

The raw tables of the incidents, mediation, requests and messaging domains were still being
written when this benchmark was, so the raw history is a bench-only table of facts-like events
(``bench_fact_events``: one row per event with its time, station, unit, metric and value; about
10 % without a unit, like street incidents). It is generated in bulk at city scale: 20,000 units
in 40 stations, 24 months, ~2.6 million events (``--quick``: 2,000 units, ~110,000 events). The
rollups are built from it by the same set-based shape as ``eqian.cockpit.rollups`` (per month,
station, unit category, metric) with one INSERT … SELECT … GROUP BY.

Measured, per backend (SQLite always; PostgreSQL with ``--pg URL``), over the same seeded-random
mix of requests (month, and for 3 of 4 requests one station, as a station officer would ask):
- rollups: ``eqian.cockpit.service.summary`` — the real code path behind GET
  /api/v1/cockpit/summary minus HTTP: every KPI for the month, the same month a year before and
  the month before, and the index grade distribution;
- raw: the same three months' sums per metric (and unit-linked or not) in one GROUP BY over the
  raw events joined to units, with an index on the event time (the best case for the baseline).
Both answer the same numbers; the script checks that on a bureau-wide and a station request.
The two are timed interleaved (machine noise falls on both alike; each request's figure is the
best of ``ROUNDS`` tries), and the rollups once more alone ("alone": no raw scan in between
evicting the page cache, which is how the cockpit runs since it never scans raw history).

Usage: python bench/cockpit.py [--quick] [--pg postgresql+asyncpg://postgres@127.0.0.1:5432/]
Last line: JSON with p50/p95 (ms) of both and the ratio raw p95 / rollup p95.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy import (
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    case,
    func,
    insert,
    literal,
    make_url,
    select,
)
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

import eqian.all_models  # noqa: F401 - every table, for create_all
from eqian.cockpit import rollups, service
from eqian.cockpit.models import CockpitMonth, Rollup
from eqian.core import months as calendar
from eqian.core.accounts import Role
from eqian.core.db import Base, UTCDateTime, make_engine
from eqian.core.permissions import Principal, Scope, ScopeKind
from eqian.organizations.categories import CATEGORIES
from eqian.organizations.models import Bureau, Station, Unit, UnitCategory

ROUNDS = 2
PG_DATABASE = "eqian_bench_cockpit"  # created and dropped by this script
SEED = 365
LAST_MONTH = "2026-10"
MONTHS = 24
# metric -> events per unit and month (mean), value range
METRICS: dict[str, tuple[float, tuple[int, int]]] = {
    "incidents.total": (1.2, (1, 1)),
    "incidents.non_police": (0.8, (1, 1)),
    "incidents.fraud_loss_yuan": (0.05, (1000, 80000)),
    "incidents.fraud_recovered_yuan": (0.03, (500, 40000)),
    "mediation.cases": (0.25, (1, 1)),
    "mediation.success": (0.22, (1, 1)),
    "mediation.failed": (0.02, (1, 1)),
    "mediation.amount_recovered_yuan": (0.1, (500, 30000)),
    "hazards.found": (0.3, (1, 1)),
    "hazards.rectified": (0.25, (1, 1)),
    "requests.submitted": (0.1, (1, 1)),
    "requests.resolved": (0.08, (1, 1)),
    "messaging.instructions": (0.6, (1, 1)),
    "messaging.acknowledged": (0.55, (1, 1)),
}

bench_meta = MetaData()
events = Table(
    "bench_fact_events",
    bench_meta,
    Column("id", Integer, primary_key=True),
    Column("at", UTCDateTime(), nullable=False),
    Column("station_id", Integer, nullable=False),
    Column("unit_id", Integer, nullable=True),
    Column("metric", String(64), nullable=False),
    Column("value", Float, nullable=False),
    Index("ix_bench_fact_events_at", "at"),
)


def plan_events(n_units: int, n_stations: int, scale: float) -> list[tuple[Any, ...]]:
    """(id, at, station_id, unit_id, metric, value) rows, deterministic for the seed."""
    rng = random.Random(SEED)
    first = calendar.shift(LAST_MONTH, -(MONTHS - 1))
    rows: list[tuple[Any, ...]] = []
    n = 0
    months = calendar.between(first, LAST_MONTH)
    for month in months:
        start, end = calendar.bounds(month)
        span = (end - start).total_seconds()
        for metric, (rate, (lo, hi)) in METRICS.items():
            count = int(rate * scale * n_units)
            for _ in range(count):
                n += 1
                unit = rng.randrange(1, n_units + 1)
                station = (unit - 1) % n_stations + 1
                at = start + dt.timedelta(seconds=rng.random() * span)
                rows.append(
                    (n, at, station, None if rng.random() < 0.1 else unit, metric, float(rng.randint(lo, hi)))
                )
    return rows


def sqlite_load(path: str, rows: list[tuple[Any, ...]]) -> None:
    """Bulk insert with the stdlib driver, times in SQLAlchemy's SQLite storage format (UTC)."""
    conn = sqlite3.connect(path)
    try:
        conn.executemany(
            "INSERT INTO bench_fact_events (id, at, station_id, unit_id, metric, value) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            ((r[0], r[1].astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f"), *r[2:]) for r in rows),
        )
        conn.commit()
        conn.execute("ANALYZE")
        conn.commit()
    finally:
        conn.close()


async def build(engine: AsyncEngine, n_units: int, n_stations: int, scale: float) -> dict[str, float]:
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
        await conn.run_sync(bench_meta.create_all)
    t0 = time.perf_counter()
    async with AsyncSession(engine) as s:
        s.add_all(
            [
                UnitCategory(code=c.code, name_zh=c.name_zh, name_en=c.name_en, sort_order=i)
                for i, c in enumerate(CATEGORIES)
            ]
        )
        s.add(Bureau(id=1, code="huzhou", name="湖州市公安局"))
        await s.flush()
        s.add_all(
            [Station(id=i, bureau_id=1, code=f"s{i}", name=f"第{i}派出所") for i in range(1, n_stations + 1)]
        )
        await s.flush()
        cats = [c.code for c in CATEGORIES]
        await s.execute(
            insert(Unit),
            [
                {
                    "id": i,
                    "name": f"单位{i}",
                    "credit_code": f"B{i:017d}",
                    "category_code": cats[i % len(cats)],
                    "station_id": (i - 1) % n_stations + 1,
                    "lat": 30.8,
                    "lng": 120.2,
                }
                for i in range(1, n_units + 1)
            ],
        )
        await s.commit()
    rows = await asyncio.to_thread(plan_events, n_units, n_stations, scale)
    if engine.dialect.name == "postgresql":
        async with engine.connect() as conn:
            raw = await conn.get_raw_connection()
            await raw.driver_connection.copy_records_to_table(  # type: ignore[union-attr]
                "bench_fact_events",
                records=rows,
                columns=["id", "at", "station_id", "unit_id", "metric", "value"],
            )
            await conn.commit()
            await conn.exec_driver_sql("ANALYZE")
            await conn.commit()
    else:  # the driver directly: SQLAlchemy's executemany would take minutes for millions of rows
        await engine.dispose()
        await asyncio.to_thread(sqlite_load, str(engine.url.database), rows)
    loaded = time.perf_counter() - t0
    # Rollups: one set-based INSERT … SELECT … GROUP BY per month.
    t1 = time.perf_counter()
    async with AsyncSession(engine) as s:
        for month in calendar.between(calendar.shift(LAST_MONTH, -(MONTHS - 1)), LAST_MONTH):
            start, end = calendar.bounds(month)
            category = func.coalesce(Unit.category_code, rollups.NO_UNIT)
            q = (
                select(
                    literal(month), events.c.station_id, category, events.c.metric, func.sum(events.c.value)
                )
                .select_from(events.outerjoin(Unit, Unit.id == events.c.unit_id))
                .where(events.c.at >= start, events.c.at < end)
                .group_by(events.c.station_id, category, events.c.metric)
            )
            cols = ["month", "station_id", "category", "metric", "value"]
            await s.execute(insert(Rollup).from_select(cols, q))
            every = (  # the all-stations rows the bureau-wide view reads
                select(
                    literal(month),
                    literal(rollups.ALL_STATIONS),
                    category,
                    events.c.metric,
                    func.sum(events.c.value),
                )
                .select_from(events.outerjoin(Unit, Unit.id == events.c.unit_id))
                .where(events.c.at >= start, events.c.at < end)
                .group_by(category, events.c.metric)
            )
            await s.execute(insert(Rollup).from_select(cols, every))
            s.add(CockpitMonth(month=month, dirty=False, computed_at=dt.datetime.now(dt.UTC), rows=0))
        await s.commit()
    rolled = time.perf_counter() - t1
    async with AsyncSession(engine) as s:
        n_rollups = await s.scalar(select(func.count()).select_from(Rollup))
    return {
        "events": float(len(rows)),
        "load_s": loaded,
        "rollup_build_s": rolled,
        "rollup_rows": float(n_rollups or 0),
    }


async def raw_summary(
    session: AsyncSession, month: str, station_id: int | None
) -> dict[tuple[str, str, bool], float]:
    """The naive way: the three months' sums straight from the raw events."""
    wanted = [month, calendar.shift(month, -1), calendar.shift(month, -12)]
    bounds = [calendar.bounds(m) for m in wanted]
    bucket = case(
        *[((events.c.at >= a) & (events.c.at < b), m) for m, (a, b) in zip(wanted, bounds, strict=True)]
    )
    linked = events.c.unit_id.is_not(None)
    in_range = bucket.is_not(None)
    q = (
        select(bucket.label("m"), events.c.metric, linked.label("linked"), func.sum(events.c.value))
        .where(events.c.at >= min(a for a, _ in bounds), events.c.at < max(b for _, b in bounds), in_range)
        .group_by("m", events.c.metric, "linked")
    )
    if station_id is not None:
        q = q.where(events.c.station_id == station_id)
    return {(m, metric, bool(li)): float(v) for m, metric, li, v in await session.execute(q)}


def report(backend: str, f: dict[str, float]) -> None:
    print(
        f"{backend}: rollups p50 {f['p50_ms']} ms p95 {f['p95_ms']} ms; raw GROUP BY p50 "
        f"{f['baseline_p50_ms']} ms p95 {f['baseline_p95_ms']} ms; ratio {f['ratio_p95']}x; "
        f"rollups alone p50 {f['alone_p50_ms']} ms p95 {f['alone_p95_ms']} ms",
        file=sys.stderr,
    )


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def measure(engine: AsyncEngine, n_stations: int, requests: int) -> dict[str, float]:
    rng = random.Random(SEED + 1)
    months = calendar.between(calendar.shift(LAST_MONTH, -11), LAST_MONTH)
    mix = [
        (rng.choice(months), rng.randint(1, n_stations) if rng.random() < 0.75 else None)
        for _ in range(requests)
    ]
    bureau = Principal(
        user_id=1, username="b", display_name="b", role=Role.BUREAU_ADMIN, scope=Scope(ScopeKind.ALL)
    )
    fast: list[float] = []
    slow: list[float] = []
    async with AsyncSession(engine) as s:
        # Same numbers both ways: checked on a bureau-wide and a station request.
        for month, station in [(mix[0][0], None), (mix[0][0], 1)]:
            summary = await service.summary(s, bureau, service.Filters(month=month, station_id=station))
            raw = await raw_summary(s, month, station)
            total = sum(v for (m, metric, _), v in raw.items() if m == month and metric == "incidents.total")
            got = next(k["value"] for k in summary["kpis"] if k["code"] == "incidents_total")
            if abs(total - got) > 1e-6 or not total:
                raise SystemExit(f"rollups and raw disagree: {got} != {total}")
        best_fast = [float("inf")] * len(mix)
        best_slow = [float("inf")] * len(mix)
        for _ in range(ROUNDS):
            for n, (month, station) in enumerate(mix):  # interleaved: machine noise falls on both alike
                t0 = time.perf_counter()
                await service.summary(s, bureau, service.Filters(month=month, station_id=station))
                await s.rollback()
                took = (time.perf_counter() - t0) * 1000
                best_fast[n] = min(best_fast[n], took)
                fast.append(took)
                t0 = time.perf_counter()
                await raw_summary(s, month, station)
                await s.rollback()
                took = (time.perf_counter() - t0) * 1000
                best_slow[n] = min(best_slow[n], took)
                slow.append(took)
        # The cockpit alone (no raw scan in between evicting the database's page cache): what a
        # deployment sees, since the cockpit never scans raw history.
        alone = [float("inf")] * len(mix)
        for _ in range(ROUNDS):
            for n, (month, station) in enumerate(mix):
                t0 = time.perf_counter()
                await service.summary(s, bureau, service.Filters(month=month, station_id=station))
                await s.rollback()
                alone[n] = min(alone[n], (time.perf_counter() - t0) * 1000)
    # Each request's latency is the best of its ROUNDS tries (another process's time slice on a
    # shared 2-core machine would otherwise decide the p95); the p95 over every try is kept too.
    all_fast, all_slow, fast, slow = fast, slow, best_fast, best_slow
    return {
        "p50_ms": round(statistics.median(fast), 2),
        "p95_ms": round(percentile(fast, 95), 2),
        "baseline_p50_ms": round(statistics.median(slow), 2),
        "baseline_p95_ms": round(percentile(slow, 95), 2),
        "ratio_p95": round(percentile(slow, 95) / percentile(fast, 95), 1),
        "alone_p50_ms": round(statistics.median(alone), 2),
        "alone_p95_ms": round(percentile(alone, 95), 2),
        "p95_all_tries_ms": round(percentile(all_fast, 95), 2),
        "baseline_p95_all_tries_ms": round(percentile(all_slow, 95), 2),
    }


async def pg_admin(url: str, sql: str) -> None:
    u = make_url(url)
    conn = await asyncpg.connect(
        user=u.username, password=u.password, host=u.host, port=u.port or 5432, database="postgres"
    )
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def run(quick: bool, pg_url: str | None) -> dict[str, Any]:
    n_units, n_stations, scale, requests = (2_000, 8, 0.5, 40) if quick else (20_000, 40, 1.0, 40)
    result: dict[str, Any] = {"units": n_units, "stations": n_stations, "months": MONTHS}
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}")
        try:
            built = await build(engine, n_units, n_stations, scale)
            print(
                f"sqlite: {built['events']:,.0f} events loaded in {built['load_s']:.1f} s; "
                f"{built['rollup_rows']:,.0f} rollup rows built in {built['rollup_build_s']:.1f} s",
                file=sys.stderr,
            )
            figures = await measure(engine, n_stations, requests)
        finally:
            await engine.dispose()
        report("sqlite", figures)
        result.update(
            {
                "events": int(built["events"]),
                "rollup_rows": int(built["rollup_rows"]),
                "rollup_build_s": round(built["rollup_build_s"], 2),
                **figures,
            }
        )
    if pg_url:
        await pg_admin(pg_url, f'DROP DATABASE IF EXISTS "{PG_DATABASE}"')
        await pg_admin(pg_url, f'CREATE DATABASE "{PG_DATABASE}"')
        url = make_url(pg_url).set(drivername="postgresql+asyncpg", database=PG_DATABASE)
        engine = make_engine(url.render_as_string(hide_password=False))
        try:
            built = await build(engine, n_units, n_stations, scale)
            figures = await measure(engine, n_stations, requests)
        finally:
            await engine.dispose()
            await pg_admin(pg_url, f'DROP DATABASE IF EXISTS "{PG_DATABASE}"')
        report("postgresql", figures)
        result.update(
            {
                "pg_rollup_build_s": round(built["rollup_build_s"], 2),
                **{f"pg_{k}": v for k, v in figures.items()},
            }
        )
    result["targets"] = {"p95_ms": 50, "ratio_p95": 100}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2,000 units, ~110k events")
    parser.add_argument("--pg", metavar="URL", help=f"also PostgreSQL (server URL; database {PG_DATABASE})")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.quick, args.pg))))


if __name__ == "__main__":
    main()
