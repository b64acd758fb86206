"""Time of ``eqian demo seed --scale city`` (20,000 units and their contacts) into a fresh database.

The command is run as a subprocess against a freshly migrated SQLite file (and a PostgreSQL
database created for the run when ``--pg URL`` is given); its wall time includes start-up,
planning the district with Faker and writing every row. The same seed is then run in-process
with the progress hook to split that time into phases.

Baseline, measured in the same run on another fresh database: the first 2,000 of those units
inserted the naive way — one ORM object at a time, ``session.add`` and a flush each, one commit
at the end — extrapolated per unit. Both are reported as units/s with the speed-up.
``--quick`` seeds 2,000 units (``--units 2000``); the baseline is the same.

Usage: python bench/demo_seed.py [--quick] [--pg postgresql+asyncpg://postgres@127.0.0.1:5432/]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import asyncpg  # type: ignore[import-untyped]
from alembic import command
from alembic.config import Config
from sqlalchemy import Table, func, insert, select
from sqlalchemy.engine import make_url

from eqian import all_models as _all_models  # noqa: F401 - every table, so foreign keys resolve
from eqian.core.db import Base, make_engine, make_sessionmaker
from eqian.demo.generator import UNITS_BY_SCALE, seed_demo
from eqian.organizations.models import Unit

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "bench-pass-365"  # noqa: S105 - throwaway demo accounts in a throwaway database
PG_DATABASE = "eqian_bench"  # created and dropped by this script; never eqian_test / eqian_ci


@dataclass(frozen=True)
class Phases:
    """In-process seed_demo, split by its progress hook."""

    total: float
    plan: float  # accounts check, argon2 hash, Faker planning, categories/stations/service points
    units: float  # bulk insert of the units
    contacts: float
    finish: float  # accounts, liaisons, the eco-policing ledger, sequences, commit, ANALYZE


@dataclass(frozen=True)
class Naive:
    units: int
    seconds: float


def alembic_upgrade(url: str) -> None:
    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.set_main_option("sqlalchemy.url", url)
    command.upgrade(cfg, "head")


def _table(model: type[Base]) -> Table:
    return cast(Table, model.__table__)


def unit_references() -> list[Table]:
    """The tables that units reference, directly or not, in an order they can be inserted in."""
    units = _table(Unit)
    needed: set[Table] = set()
    stack = [units]
    while stack:
        for fk in stack.pop().foreign_keys:
            parent = fk.column.table
            if parent is not units and parent not in needed:
                needed.add(parent)
                stack.append(parent)
    return [t for t in Base.metadata.sorted_tables if t in needed]


class Backend:
    """Hands out fresh, migrated databases of one kind."""

    name = "sqlite"

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.count = 0

    @asynccontextmanager
    async def fresh(self) -> AsyncIterator[str]:
        self.count += 1
        url = f"sqlite+aiosqlite:///{(self.tmp / f'seed-{self.count}.db').as_posix()}"
        # Alembic's env.py runs its own event loop, so it gets a thread of its own.
        await asyncio.to_thread(alembic_upgrade, url)
        yield url


class PgBackend(Backend):
    name = "postgresql"

    def __init__(self, tmp: Path, server_url: str) -> None:
        super().__init__(tmp)
        url = make_url(server_url)
        if not url.drivername.startswith("postgresql"):
            raise SystemExit(f"--pg wants a postgresql+asyncpg:// URL, not {url.drivername}")
        self.url = url.set(drivername="postgresql+asyncpg", database=PG_DATABASE)
        self.admin_dsn = url.set(drivername="postgresql", database="postgres").render_as_string(
            hide_password=False
        )

    async def _admin(self, sql: str) -> None:
        conn = await asyncpg.connect(self.admin_dsn)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    @asynccontextmanager
    async def fresh(self) -> AsyncIterator[str]:
        url = self.url.render_as_string(hide_password=False)
        await self._admin(f'DROP DATABASE IF EXISTS "{PG_DATABASE}" WITH (FORCE)')
        await self._admin(f'CREATE DATABASE "{PG_DATABASE}"')
        try:
            await asyncio.to_thread(alembic_upgrade, url)
            yield url
        finally:
            await self._admin(f'DROP DATABASE IF EXISTS "{PG_DATABASE}" WITH (FORCE)')


def run_cli(url: str, n_units: int, tmp: Path) -> float:
    """Wall time of the real command, start-up included."""
    env = {
        **os.environ,
        "EQIAN_DATABASE_URL": url,
        "EQIAN_DEMO_PASSWORD": PASSWORD,
        "EQIAN_VAR_DIR": str(tmp),
        "EQIAN_ENV_FILE": str(tmp / "no.env"),  # ignore a developer's .env
        "EQIAN_LOG_LEVEL": "WARNING",
    }
    argv = [sys.executable, "-m", "eqian", "demo", "seed", "--scale", "city"]
    if n_units != UNITS_BY_SCALE["city"]:
        argv += ["--units", str(n_units)]
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, cwd=tmp, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"eqian demo seed failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    summary = next((line for line in done.stdout.splitlines() if "家单位" in line), "").strip()
    print(f"    eqian demo seed --scale city: {seconds:.2f} s — {summary}")
    return seconds


async def read_seeded(
    url: str, n_units: int
) -> tuple[int, dict[str, list[dict[str, Any]]], list[dict[str, Any]]]:
    """Units in the seeded database, its reference rows, and its first ``n_units`` units."""
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            total = int(await conn.scalar(select(func.count()).select_from(_table(Unit))) or 0)
            reference = {
                t.name: [dict(r) for r in (await conn.execute(select(t))).mappings()]
                for t in unit_references()
            }
            units = [
                dict(r)
                for r in (
                    await conn.execute(select(_table(Unit)).order_by(_table(Unit).c.id).limit(n_units))
                ).mappings()
            ]
    finally:
        await engine.dispose()
    return total, reference, units


async def seed_in_process(url: str, n_units: int) -> Phases:
    marks: list[tuple[float, int]] = []

    def progress(done: int, _total: int) -> None:
        marks.append((time.perf_counter(), done))

    engine = make_engine(url)
    try:
        started = time.perf_counter()
        await seed_demo(
            make_sessionmaker(engine), scale="city", units=n_units, password=PASSWORD, progress=progress
        )
        ended = time.perf_counter()
    finally:
        await engine.dispose()
    start_inserts = marks[0][0]
    units_done = next(t for t, done in marks if done >= n_units)
    return Phases(
        total=ended - started,
        plan=start_inserts - started,
        units=units_done - start_inserts,
        contacts=marks[-1][0] - units_done,
        finish=ended - marks[-1][0],
    )


async def insert_naive(
    url: str, reference: dict[str, list[dict[str, Any]]], rows: list[dict[str, Any]]
) -> Naive:
    """The naive way: one ORM object, one flush, per unit; one commit at the end."""
    engine = make_engine(url)
    factory = make_sessionmaker(engine)
    try:
        async with factory() as session:
            for table in unit_references():
                if reference[table.name]:
                    await session.execute(insert(table), reference[table.name])
            await session.commit()
        async with factory() as session:
            started = time.perf_counter()
            for row in rows:
                fields = {k: v for k, v in row.items() if k != "id"}  # the database assigns the id
                session.add(Unit(**fields))
                await session.flush()
            await session.commit()
            seconds = time.perf_counter() - started
    finally:
        await engine.dispose()
    return Naive(units=len(rows), seconds=seconds)


async def measure(backend: Backend, n_units: int, n_naive: int) -> dict[str, Any]:
    print(f"\n{backend.name}")
    async with backend.fresh() as url:
        cli_seconds = run_cli(url, n_units, backend.tmp)
        seeded, reference, first_units = await read_seeded(url, n_naive)
    if seeded != n_units:
        raise SystemExit(f"expected {n_units} units, found {seeded}")
    async with backend.fresh() as url:
        phases = await seed_in_process(url, n_units)
    print(
        f"    in-process seed_demo: {phases.total:.2f} s = plan {phases.plan:.2f} + units {phases.units:.2f}"
        f" + contacts {phases.contacts:.2f} + rest {phases.finish:.2f}"
        " (accounts, eco-policing ledger, commit, ANALYZE)"
    )
    async with backend.fresh() as url:
        naive = await insert_naive(url, reference, first_units)
    naive_rate = naive.units / naive.seconds
    print(
        f"    naive ORM, flush per unit: {naive.units:,} units in {naive.seconds:.2f} s "
        f"({naive.seconds / naive.units * 1000:.2f} ms/unit; {n_units:,} units would take "
        f"{n_units / naive_rate:.1f} s)"
    )
    rate = n_units / cli_seconds
    insert_rate = n_units / phases.units
    print(
        f"    units/s: command {rate:,.0f} (speed-up {rate / naive_rate:.1f}x), bulk unit insert "
        f"{insert_rate:,.0f} ({insert_rate / naive_rate:.1f}x), naive {naive_rate:,.0f}"
    )
    return {
        "units": n_units,
        "seconds": round(cli_seconds, 2),
        "units_per_s": round(rate),
        "insert_units_per_s": round(insert_rate),
        "phases_s": {
            "plan": round(phases.plan, 2),
            "units": round(phases.units, 2),
            "contacts": round(phases.contacts, 2),
            "rest": round(phases.finish, 2),
        },
        "baseline_units": naive.units,
        "baseline_seconds": round(naive.seconds, 2),
        "baseline_units_per_s": round(naive_rate),
        "baseline_extrapolated_s": round(n_units / naive_rate, 1),
        "speedup": round(rate / naive_rate, 1),
        "insert_speedup": round(insert_rate / naive_rate, 1),
    }


async def run(quick: bool, pg_url: str | None) -> dict[str, Any]:
    n_units = 2_000 if quick else UNITS_BY_SCALE["city"]
    n_naive = 2_000
    print(f"Demo seed: `eqian demo seed --scale city` ({n_units:,} units and contacts) into a fresh database")
    print(f"  baseline: the first {n_naive:,} generated units inserted one ORM object + flush at a time")
    with tempfile.TemporaryDirectory(prefix="eqian-bench-") as tmp_name:
        tmp = Path(tmp_name)
        result = await measure(Backend(tmp), n_units, n_naive)
        if pg_url:
            pg = await measure(PgBackend(tmp, pg_url), n_units, n_naive)
            result.update({f"pg_{key}": value for key, value in pg.items() if key != "units"})
    return {"mode": "quick" if quick else "full", **result}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="seed 2,000 units instead of 20,000")
    parser.add_argument("--pg", metavar="URL", help="also PostgreSQL (server URL; database eqian_bench)")
    args = parser.parse_args()
    started = time.perf_counter()
    result = asyncio.run(run(args.quick, args.pg))
    print(f"  wall time {time.perf_counter() - started:.1f} s")
    sys.stdout.flush()
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    main()
