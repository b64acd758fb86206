"""The linker's registry aging out under load, at city scale: how long the worker is held up.

Intake links every incident against the registry of units held in memory (``incidents.linking``),
rebuilt when a unit was added or when it is ``CACHE_SECONDS`` old. This script builds a city's
registry (20,000 active units in 40 stations; ``--quick``: 2,000) in a throwaway database, lets the
cached registry age out, and then sends ``--clients`` concurrent requests for it (what the requests
in flight of one busy worker do at that moment) while a ticker coroutine measures the event loop:
the longest it went without a turn is how long every other request of that worker waited.

Measured for this code and, as the baseline, for the linker of commit ``BEFORE`` (loaded from git:
every request in flight rebuilt the registry, each in one piece), alternately, ``--rounds`` times.
Figures: rebuilds per aging-out, the longest stall of the event loop and the time until every
request had its registry; ``stall_ratio`` = the baseline's longest stall / this code's.

Usage: python bench/registry_rebuild.py [--quick] [--rounds N] [--clients N] [--sqlite]
       [--pg postgresql+asyncpg://postgres@127.0.0.1:5432/]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.pgadmin import admin  # noqa: E402

import eqian.all_models  # noqa: E402, F401 - every table, for create_all
from eqian.core import gcpolicy  # noqa: E402
from eqian.core.db import Base, make_engine, make_sessionmaker  # noqa: E402
from eqian.incidents import linking  # noqa: E402
from eqian.organizations.categories import CATEGORIES  # noqa: E402
from eqian.organizations.models import Bureau, Station, Unit, UnitCategory  # noqa: E402

BEFORE = "354b97e"  # stop 22: a registry that aged out was rebuilt by every request in flight
DB_NAME = "eqian_bench_registry"
STATIONS = 40
_WORDS = "织里童装服饰针织家纺印染电子科技五金机械物流商贸绣花羊毛衫"


def linker_before() -> types.ModuleType:
    source = subprocess.run(
        [shutil.which("git") or "git", "show", f"{BEFORE}:src/eqian/incidents/linking.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    module = types.ModuleType("linking_before")
    sys.modules[module.__name__] = module  # its dataclasses look their module up
    exec(compile(source, f"{BEFORE}:linking.py", "exec"), module.__dict__)  # noqa: S102 - our own history
    return module


async def seed(factory: async_sessionmaker[AsyncSession], units: int) -> None:
    rng = random.Random(365)
    async with factory() as session:
        session.add_all(
            UnitCategory(code=c.code, name_zh=c.name_zh, name_en=c.name_en, sort_order=i)
            for i, c in enumerate(CATEGORIES)
        )
        bureau = Bureau(code="HZ", name="湖州市公安局")
        session.add(bureau)
        await session.flush()
        for s in range(STATIONS):
            session.add(
                Station(
                    bureau_id=bureau.id,
                    code=f"S{s:02d}",
                    name=f"第{s + 1}派出所",
                    lat=30.7 + s * 0.01,
                    lng=120.1 + s * 0.01,
                )
            )
        await session.flush()
        codes = [c.code for c in CATEGORIES]
        rows = [
            {
                "name": "湖州" + "".join(rng.choice(_WORDS) for _ in range(5)) + f"{i}有限公司",
                "credit_code": f"91330{i:013d}",
                "category_code": rng.choice(codes),
                "station_id": 1 + i % STATIONS,
                "address": f"吴兴区{rng.choice(_WORDS)}{rng.choice(_WORDS)}路{i}号",
                "lat": 30.7 + rng.random() * 0.4,
                "lng": 120.1 + rng.random() * 0.4,
                "status": "active",
            }
            for i in range(units)
        ]
        await session.execute(insert(Unit), rows)
        await session.commit()


async def aging_out(module: Any, factory: async_sessionmaker[AsyncSession], clients: int) -> dict[str, float]:
    """The cached registry ages out while ``clients`` requests ask for it."""
    module.invalidate()
    async with factory() as session:
        old = await module.get_linker(session)
    old.built -= module.CACHE_SECONDS + 1
    old.checked -= module.CACHE_SECONDS + 1
    longest = 0.0
    running = True

    async def ticker() -> None:
        nonlocal longest
        last = time.perf_counter()
        while running:
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            longest = max(longest, now - last)
            last = now

    async def request() -> Any:
        async with factory() as session:
            return await module.get_linker(session)

    tick = asyncio.create_task(ticker())
    await asyncio.sleep(0.01)
    start = time.perf_counter()
    got = await asyncio.gather(*(request() for _ in range(clients)))
    seconds = time.perf_counter() - start
    running = False
    await tick
    return {
        "rebuilds": len({id(linker) for linker in got} - {id(old)}),
        "stall_ms": longest * 1000,
        "all_served_ms": seconds * 1000,
    }


async def measure(url: str, units: int, clients: int, rounds: int) -> dict[str, Any]:
    engine = make_engine(url, pool_size=clients + 4)
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    factory = make_sessionmaker(engine)
    await seed(factory, units)
    gcpolicy.settle_startup()  # as a worker starts (its collector's pace, what it loaded frozen)
    before = linker_before()
    runs: dict[str, list[dict[str, float]]] = {"now": [], "before": []}
    try:
        for r in range(rounds):
            for name, module in (("now", linking), ("before", before)):
                got = await aging_out(module, factory, clients)
                runs[name].append(got)
                print(
                    f"round {r + 1} {name:>6}: " + ", ".join(f"{k} {v:.1f}" for k, v in got.items()),
                    flush=True,
                )
    finally:
        await engine.dispose()
        linking.invalidate()
    figures: dict[str, Any] = {}
    for name, prefix in (("now", ""), ("before", "baseline_")):
        figures[prefix + "rebuilds"] = max(g["rebuilds"] for g in runs[name])
        figures[prefix + "stall_ms_median"] = round(statistics.median(g["stall_ms"] for g in runs[name]), 1)
        figures[prefix + "stall_ms_max"] = round(max(g["stall_ms"] for g in runs[name]), 1)
        figures[prefix + "all_served_ms_median"] = round(
            statistics.median(g["all_served_ms"] for g in runs[name]), 1
        )
    figures["stall_ratio"] = round(figures["baseline_stall_ms_median"] / figures["stall_ms_median"], 1)
    return figures


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--sqlite", action="store_true", help="an embedded SQLite file instead of PostgreSQL")
    parser.add_argument("--pg", default="postgresql+asyncpg://postgres@127.0.0.1:5432/")
    args = parser.parse_args()
    units = 2_000 if args.quick else 20_000
    rounds = 2 if args.quick else args.rounds
    if args.sqlite:
        with tempfile.TemporaryDirectory() as tmp:
            figures = await measure(f"sqlite+aiosqlite:///{tmp}/registry.db", units, args.clients, rounds)
    else:
        await admin(args.pg, f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
        await admin(args.pg, f"CREATE DATABASE {DB_NAME}")
        try:
            figures = await measure(args.pg + DB_NAME, units, args.clients, rounds)
        finally:
            await admin(args.pg, f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
    backend = "sqlite" if args.sqlite else "postgresql"
    print(json.dumps({"mode": "quick" if args.quick else "full", "backend": backend, "units": units,
                      "clients": args.clients, "rounds": rounds} | figures))  # fmt: skip


if __name__ == "__main__":
    asyncio.run(main())
