"""Safety index computation at city scale: SQLite and PostgreSQL against DuckDB on the same rows.

Builds a throwaway database with 20,000 units in 40 stations and two years of the rows the index's
facts read — hazards, self-inspections, hires with their residence registration, activity
invitations and environment alerts: about 3.5 million rows (``--quick``: 2,000 units, ~10 %) —
inserted in bulk (stdlib sqlite3 / asyncpg COPY). Then, for the last month:

- ``compute_s``: ``eqian.safety_index.service.compute_month`` end to end, the code path of
  ``eqian index compute`` (one facts pass per domain, scoring in Python, ranks, one bulk write of
  every unit's row, audit row and outbox event, commit). Best of 3 (a re-run replaces the month).
- ``facts_s``: the facts pass alone (``unit_metrics``), best of 3.
- ``paced_s``: ``compute_month`` once more with ``pace=DEFAULT_PACE``, as the monthly job and
  ``eqian index compute`` run it beside the live service (``core/pacing.py``; PostgreSQL only);
  ``paced_paused_s``: how much of it was pauses (the pacer pauses only while another client of the
  database is busy, so on an otherwise idle database it should be about 0).
- ``score_s``: the Python scoring alone for every unit over every metric of the model (synthetic
  values, all metrics non-zero: the worst case), with ranks.
- ``cpu_loop_s``: a 10M-iteration Python loop, to read the figures against the machine's load.
- baseline ``duckdb_s``: DuckDB (in-process, columnar) running the same aggregations (the same
  GROUP BYs as the facts modules) over the same rows, loaded from CSV, best of 3.
Ratios: ``compute_s / duckdb_s`` and ``facts_s / duckdb_s`` per backend.

The incidents, mediation, requests and messaging tables were being built while this was written;
their facts are not in the generated data (their metrics count as 0 in the timed run; the scoring
figure covers every metric of the model).

Usage: python bench/index.py [--quick] [--pg postgresql+asyncpg://postgres@127.0.0.1:5432/]
Last line: JSON with the figures, the baseline's and the ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import datetime as dt
import gc
import json
import random
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import duckdb
from sqlalchemy import insert, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

import eqian.all_models  # noqa: F401 - every table, for create_all
from eqian.core.db import Base, make_engine, make_sessionmaker
from eqian.core.months import between as months_between
from eqian.core.months import bounds as month_bounds
from eqian.core.months import shift as shift_month
from eqian.core.permissions import SYSTEM
from eqian.organizations.categories import CATEGORIES
from eqian.organizations.models import Bureau, Station, Unit, UnitCategory
from eqian.safety_index.compute import group_ranks, load_model, score_unit
from eqian.safety_index.service import DEFAULT_PACE, compute_month, unit_metrics

PG_DATABASE = "eqian_bench_index"  # created and dropped by this script
SEED = 365
LAST_MONTH = "2026-10"
MONTHS = 24
NAMES = ("eqian.hazards.facts", "eqian.workforce.facts", "eqian.activities.facts", "eqian.environment.facts")
NOW = dt.datetime(2026, 11, 15, tzinfo=dt.UTC)
Rows = list[tuple[Any, ...]]


def plan(n_units: int, n_stations: int, scale: float) -> dict[str, tuple[list[str], Rows]]:
    """Every table's (columns, rows), deterministic for the seed."""
    rng = random.Random(SEED)
    months = months_between(shift_month(LAST_MONTH, -(MONTHS - 1)), LAST_MONTH)
    hz: Rows = []
    insp: Rows = []
    persons: Rows = []
    emps: Rows = []
    res: Rows = []
    acts: Rows = []
    invs: Rows = []
    alerts: Rows = []
    by_station: dict[int, list[int]] = {}
    for u in range(1, n_units + 1):
        by_station.setdefault((u - 1) % n_stations + 1, []).append(u)
    for month in months:
        start, end = month_bounds(month)
        span = (end - start).total_seconds()

        def at() -> dt.datetime:
            return start + dt.timedelta(seconds=rng.random() * span)  # noqa: B023

        for _ in range(int(2.5 * scale * n_units)):
            found = at()
            deadline = found + dt.timedelta(days=rng.choice((3, 7, 15, 30)))
            fixed = found + dt.timedelta(days=rng.random() * 40)
            verified = fixed if rng.random() < 0.85 and fixed < NOW else None
            hz.append(
                (
                    len(hz) + 1,
                    rng.randrange(1, n_units + 1),
                    "隐患",
                    "medium",
                    "verified" if verified else "open",
                    found,
                    deadline,
                    verified,
                    0,
                    found,
                )
            )
        for _ in range(int(1.0 * scale * n_units)):
            t = at()
            insp.append((len(insp) + 1, rng.randrange(1, n_units + 1), "self_inspection", t, "", t))
        for _ in range(int(1.0 * scale * n_units)):
            pid = len(persons) + 1
            hired = at().date()
            persons.append((pid, f"P{pid:017d}", "员工", "", dt.date(1995, 1, 1), "330502", NOW))
            emps.append((pid, pid, rng.randrange(1, n_units + 1), hired, "", "", NOW))
            r = rng.random()
            reg = hired + dt.timedelta(days=rng.randrange(0, 25 if r < 0.8 else 90)) if r < 0.95 else None
            res.append((pid, "registered" if reg else "unregistered", reg, NOW))
        for station, units in by_station.items():
            for _ in range(4):
                aid = len(acts) + 1
                t = at()
                acts.append(
                    (
                        aid,
                        station,
                        "roundtable",
                        "恳谈",
                        t,
                        t + dt.timedelta(hours=2),
                        "",
                        "held",
                        "",
                        NOW,
                        NOW,
                    )
                )
                for u in rng.sample(units, min(len(units), max(1, int(100 * scale)))):
                    invs.append((len(invs) + 1, aid, u, "accepted", rng.random() < 0.8, 1, ""))
        for _ in range(max(1, int(0.004 * scale * n_units))):
            t = at()
            alerts.append(
                (
                    len(alerts) + 1,
                    f"b{len(alerts)}",
                    rng.randrange(1, n_units + 1),
                    "ash",
                    "red",
                    month,
                    "铝灰",
                    "{}",
                    "open",
                    t,
                )
            )
    return {
        "hz_hazards": (
            [
                "id",
                "unit_id",
                "description",
                "severity",
                "status",
                "found_at",
                "deadline",
                "verified_at",
                "escalation_level",
                "updated_at",
            ],
            hz,
        ),
        "hz_inspections": (["id", "unit_id", "kind", "inspected_at", "note", "created_at"], insp),
        "workforce_persons": (
            ["id", "id_number", "name", "phone", "birth_date", "home_region", "created_at"],
            persons,
        ),
        "workforce_employments": (
            ["id", "person_id", "unit_id", "hired_on", "dormitory", "position", "created_at"],
            emps,
        ),
        "workforce_residences": (["person_id", "status", "registered_on", "updated_at"], res),
        "activities": (
            [
                "id",
                "station_id",
                "kind",
                "title",
                "starts_at",
                "ends_at",
                "location",
                "status",
                "minutes",
                "created_at",
                "updated_at",
            ],
            acts,
        ),
        "activity_invitations": (
            ["id", "activity_id", "unit_id", "response", "attended", "attendee_count", "attendee_names"],
            invs,
        ),
        "env_alerts": (
            [
                "id",
                "fingerprint",
                "unit_id",
                "kind",
                "severity",
                "period",
                "message",
                "evidence",
                "status",
                "created_at",
            ],
            alerts,
        ),
    }


def _sqlite_value(v: Any) -> Any:
    if isinstance(v, dt.datetime):
        return v.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(v, dt.date):
        return v.isoformat()
    return v


def sqlite_load(path: str, tables: dict[str, tuple[list[str], Rows]]) -> None:
    conn = sqlite3.connect(path)
    try:
        for table, (cols, rows) in tables.items():
            marks = ", ".join("?" * len(cols))
            conn.executemany(
                f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({marks})",  # noqa: S608 - our own table names
                (tuple(_sqlite_value(v) for v in r) for r in rows),
            )
        conn.commit()
        conn.execute("ANALYZE")
        conn.commit()
    finally:
        conn.close()


async def base_rows(engine: AsyncEngine, n_units: int, n_stations: int) -> None:
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
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
                }
                for i in range(1, n_units + 1)
            ],
        )
        await s.commit()


async def load(
    engine: AsyncEngine, tables: dict[str, tuple[list[str], Rows]], n_units: int, n_stations: int
) -> float:
    t0 = time.perf_counter()
    await base_rows(engine, n_units, n_stations)
    if engine.dialect.name == "postgresql":
        async with engine.connect() as conn:
            raw = await conn.get_raw_connection()
            for table, (cols, rows) in tables.items():
                await raw.driver_connection.copy_records_to_table(table, records=rows, columns=cols)  # type: ignore[union-attr]
            await conn.commit()
            for table in (
                "hz_hazards",
                "hz_inspections",
                "workforce_employments",
                "activities",
                "activity_invitations",
                "env_alerts",
                "units",
            ):
                await conn.exec_driver_sql(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"  # noqa: S608 - our own table names
                )
            await conn.exec_driver_sql("ANALYZE")
            await conn.commit()
    else:
        await engine.dispose()
        await asyncio.to_thread(sqlite_load, str(engine.url.database), tables)
    return time.perf_counter() - t0


async def time_backend(engine: AsyncEngine, repeats: int = 3) -> dict[str, float]:
    factory = make_sessionmaker(engine)
    compute, facts = [], []
    units = 0
    for _ in range(repeats):
        async with factory() as s:
            t = time.perf_counter()
            values = await unit_metrics(s, LAST_MONTH, NAMES)
            facts.append(time.perf_counter() - t)
    for _ in range(repeats):
        async with factory() as s:
            t = time.perf_counter()
            r = await compute_month(s, SYSTEM, LAST_MONTH, names=NAMES, replace=True)
            compute.append(time.perf_counter() - t)
            units = r.units
    async with factory() as s:  # once more as the monthly job runs it: paced (PostgreSQL only)
        t = time.perf_counter()
        paced_run = await compute_month(s, SYSTEM, LAST_MONTH, names=NAMES, replace=True, pace=DEFAULT_PACE)
        paced = time.perf_counter() - t
    return {
        "paced_s": round(paced, 3),
        "paced_paused_s": paced_run.paused,
        "compute_s": round(min(compute), 3),
        "facts_s": round(min(facts), 3),
        "units_scored": units,
        "units_with_facts": len(values),
    }


DUCK_QUERIES = (
    "SELECT u.station_id, h.unit_id, count(*) FROM hz_hazards h JOIN units u ON u.id = h.unit_id "
    "WHERE h.found_at >= $s AND h.found_at < $e GROUP BY 1, 2",
    "SELECT u.station_id, h.unit_id, count(*), sum(epoch(h.verified_at - h.found_at) / 86400.0) "
    "FROM hz_hazards h JOIN units u ON u.id = h.unit_id "
    "WHERE h.verified_at >= $s AND h.verified_at < $e GROUP BY 1, 2",
    "SELECT u.station_id, h.unit_id, count(*) FROM hz_hazards h JOIN units u ON u.id = h.unit_id "
    "WHERE h.found_at < $e AND h.deadline < $e AND (h.verified_at IS NULL OR h.verified_at >= $e) "
    "GROUP BY 1, 2",
    "SELECT u.station_id, i.unit_id, count(*) FROM hz_inspections i JOIN units u ON u.id = i.unit_id "
    "WHERE i.kind = 'self_inspection' AND i.inspected_at >= $s AND i.inspected_at < $e GROUP BY 1, 2",
    "SELECT u.station_id, e.unit_id, count(*), sum(CASE WHEN r.registered_on IS NOT NULL AND "
    "r.registered_on - e.hired_on <= 30 THEN 1 ELSE 0 END), "
    "sum(CASE WHEN r.registered_on IS NOT NULL THEN 1 ELSE 0 END) "
    "FROM workforce_employments e JOIN units u ON u.id = e.unit_id LEFT JOIN workforce_residences r "
    "ON r.person_id = e.person_id WHERE e.hired_on >= $ds AND e.hired_on < $de GROUP BY 1, 2",
    "SELECT u.station_id, v.unit_id, count(*), sum(CASE WHEN v.attended THEN 1 ELSE 0 END) "
    "FROM activity_invitations v "
    "JOIN activities a ON a.id = v.activity_id JOIN units u ON u.id = v.unit_id WHERE a.starts_at >= $s "
    "AND a.starts_at < $e AND a.status <> 'cancelled' GROUP BY 1, 2",
    "SELECT u.station_id, x.unit_id, count(*) FROM env_alerts x LEFT JOIN units u ON u.id = x.unit_id "
    "WHERE x.created_at >= $s AND x.created_at < $e GROUP BY 1, 2",
)
DUCK_COLUMNS = {  # what the aggregations read, with DuckDB types
    "units": {"id": "INTEGER", "station_id": "INTEGER"},
    "hz_hazards": {
        "unit_id": "INTEGER",
        "found_at": "TIMESTAMP",
        "deadline": "TIMESTAMP",
        "verified_at": "TIMESTAMP",
    },
    "hz_inspections": {"unit_id": "INTEGER", "kind": "VARCHAR", "inspected_at": "TIMESTAMP"},
    "workforce_employments": {"person_id": "INTEGER", "unit_id": "INTEGER", "hired_on": "DATE"},
    "workforce_residences": {"person_id": "INTEGER", "registered_on": "DATE"},
    "activities": {"id": "INTEGER", "starts_at": "TIMESTAMP", "status": "VARCHAR"},
    "activity_invitations": {"activity_id": "INTEGER", "unit_id": "INTEGER", "attended": "BOOLEAN"},
    "env_alerts": {"unit_id": "INTEGER", "created_at": "TIMESTAMP"},
}


def duck_baseline(
    tables: dict[str, tuple[list[str], Rows]], n_units: int, n_stations: int, tmp: Path, repeats: int = 3
) -> float:
    all_tables = dict(tables)
    all_tables["units"] = (
        ["id", "station_id"],
        [(i, (i - 1) % n_stations + 1) for i in range(1, n_units + 1)],
    )
    con = duckdb.connect()
    for table, types in DUCK_COLUMNS.items():
        cols, rows = all_tables[table]
        idx = [cols.index(c) for c in types]
        path = tmp / f"{table}.csv"
        with path.open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerows(_csv_row(r, idx) for r in rows)
        spec = ", ".join(f"'{c}': '{t}'" for c, t in types.items())
        source = f"read_csv('{path}', header=false, columns={{{spec}}}, nullstr='')"
        con.execute(f"CREATE TABLE {table} AS SELECT * FROM {source}")  # noqa: S608 - our own table names
    start, end = month_bounds(LAST_MONTH)
    params = {
        "s": start.replace(tzinfo=None),
        "e": end.replace(tzinfo=None),
        "ds": start.astimezone(dt.timezone(dt.timedelta(hours=8))).date(),
        "de": end.astimezone(dt.timezone(dt.timedelta(hours=8))).date(),
    }
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        for q in DUCK_QUERIES:
            used = {k: v for k, v in params.items() if f"${k}" in q}
            con.execute(q, used).fetchall()
        best = min(best, time.perf_counter() - t)
    con.close()
    return round(best, 4)


def _csv_row(r: tuple[Any, ...], idx: list[int]) -> list[Any]:
    out: list[Any] = []
    for i in idx:
        v = r[i]
        if v is None:
            out.append("")
        elif isinstance(v, dt.datetime):
            out.append(v.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f"))
        else:
            out.append(v.isoformat() if isinstance(v, dt.date) else v)
    return out


def cpu_calibration() -> float:
    """How busy the machine is: a shared 2-core box can be several times slower than an idle core."""
    t = time.perf_counter()
    total = 0
    for i in range(10_000_000):
        total += i
    return round(time.perf_counter() - t, 2)


def scoring_only(n_units: int, n_stations: int) -> dict[str, float]:
    model = load_model()
    rng = random.Random(SEED)
    metrics = sorted(model.metrics)
    values = {u: {m: float(rng.randint(1, 5)) for m in metrics} for u in range(1, n_units + 1)}
    t = time.perf_counter()
    scored = [score_unit(model, values[u], unit_id=u, month=LAST_MONTH) for u in values]
    scores = [s.score for s in scored]
    group_ranks(((u - 1) % n_stations for u in values), scores)
    group_ranks((u % 11 for u in values), scores)
    return {"score_s": round(time.perf_counter() - t, 3), "metrics": float(len(metrics))}


async def pg_admin(url: str, sql: str) -> None:
    u = make_url(url)
    conn = await asyncpg.connect(
        user=u.username, password=u.password, host=u.host, port=u.port or 5432, database="postgres"
    )
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def count_rows(tables: dict[str, tuple[list[str], Rows]]) -> int:
    return sum(len(rows) for _, rows in tables.values())


async def run(quick: bool, pg_url: str | None, sqlite: bool = True) -> dict[str, Any]:
    n_units, n_stations, scale = (2_000, 8, 1.0) if quick else (20_000, 40, 1.0)
    result_cpu = cpu_calibration()
    print(
        f"cpu calibration: 10M-iteration Python loop in {result_cpu} s (idle modern core: ~0.5 s)",
        file=sys.stderr,
    )
    scoring = scoring_only(n_units, n_stations)  # first, on a small heap
    t = time.perf_counter()
    tables = plan(n_units, n_stations, scale)
    gc.freeze()  # millions of row tuples stay alive: keep the cyclic GC from walking them again and again
    rows = count_rows(tables)
    print(
        f"generated {rows:,} rows for {n_units:,} units in {time.perf_counter() - t:.1f} s", file=sys.stderr
    )
    result: dict[str, Any] = {
        "units": n_units,
        "stations": n_stations,
        "months": MONTHS,
        "rows": rows,
        "cpu_loop_s": result_cpu,
    }
    result.update(scoring)
    print(
        f"scoring alone: {n_units:,} units × {result['metrics']:.0f} metrics in {result['score_s']} s",
        file=sys.stderr,
    )
    with tempfile.TemporaryDirectory() as tmp:
        result["duckdb_s"] = await asyncio.to_thread(duck_baseline, tables, n_units, n_stations, Path(tmp))
        print(f"duckdb: the same aggregations in {result['duckdb_s']} s", file=sys.stderr)
        if sqlite:
            engine = make_engine(f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}")
            try:
                loaded = await load(engine, tables, n_units, n_stations)
                print(f"sqlite: loaded in {loaded:.1f} s", file=sys.stderr)
                f = await time_backend(engine)
            finally:
                await engine.dispose()
            print(
                f"sqlite: compute {f['compute_s']} s (facts {f['facts_s']} s), {f['units_scored']:,} units",
                file=sys.stderr,
            )
            result.update(
                {
                    "sqlite_compute_s": f["compute_s"],
                    "sqlite_facts_s": f["facts_s"],
                    "units_with_facts": f["units_with_facts"],
                }
            )
    if pg_url:
        await pg_admin(pg_url, f'DROP DATABASE IF EXISTS "{PG_DATABASE}"')
        await pg_admin(pg_url, f'CREATE DATABASE "{PG_DATABASE}"')
        url = make_url(pg_url).set(drivername="postgresql+asyncpg", database=PG_DATABASE)
        engine = make_engine(url.render_as_string(hide_password=False))
        try:
            loaded = await load(engine, tables, n_units, n_stations)
            print(f"postgresql: loaded in {loaded:.1f} s", file=sys.stderr)
            f = await time_backend(engine)
        finally:
            await engine.dispose()
            await pg_admin(pg_url, f'DROP DATABASE IF EXISTS "{PG_DATABASE}"')
        print(f"postgresql: compute {f['compute_s']} s (facts {f['facts_s']} s)", file=sys.stderr)
        result.update(
            {
                "pg_compute_s": f["compute_s"],
                "pg_facts_s": f["facts_s"],
                "pg_paced_s": f["paced_s"],
                "pg_paced_paused_s": f["paced_paused_s"],
            }
        )
    duck = max(result["duckdb_s"], 1e-4)
    for backend in ("sqlite", "pg"):
        if f"{backend}_compute_s" in result:
            result[f"{backend}_ratio_compute"] = round(result[f"{backend}_compute_s"] / duck, 1)
            result[f"{backend}_ratio_facts"] = round(result[f"{backend}_facts_s"] / duck, 1)
    result["targets"] = {"pg_compute_s": 10, "pg_ratio_compute": 5}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2,000 units (~350k rows)")
    parser.add_argument("--pg", metavar="URL", help=f"also PostgreSQL (server URL; database {PG_DATABASE})")
    parser.add_argument("--no-sqlite", action="store_true", help="PostgreSQL (and DuckDB) only")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.quick, args.pg, sqlite=not args.no_sqlite))))


if __name__ == "__main__":
    main()
