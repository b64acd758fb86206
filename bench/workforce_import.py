"""Time of importing a unit's HR sheet (XLSX) through ``workforce.transfer.import_hires``.

A sheet of N rows (default 5,000; ``--quick`` 1,000) with valid, distinct ID numbers is written
with openpyxl and imported into a freshly migrated SQLite file (and a PostgreSQL database when
``--pg URL`` is given, which must name an empty scratch database). Phases: reading the sheet,
validating it, and the whole import (read + validate + chunked lookups + bulk insert + commit).

Baseline, measured in the same run: the first 300 rows entered one by one through
``workforce.service.hire`` (the path of ``POST /api/v1/workers/hires``: a lookup, an audit row and
a commit per hire), extrapolated to N rows.

Usage: python bench/workforce_import.py [--quick] [--rows N] [--pg postgresql+asyncpg://…/scratch]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import openpyxl
from alembic import command
from alembic.config import Config
from sqlalchemy import inspect, text

from eqian import all_models as _all_models  # noqa: F401 - every table, so foreign keys resolve
from eqian.core.db import Base, make_engine, make_sessionmaker
from eqian.core.ids import make_resident_id
from eqian.core.permissions import SYSTEM
from eqian.organizations.models import Bureau, Station, Unit, UnitCategory
from eqian.workforce import schemas, service, transfer

ROOT = Path(__file__).resolve().parents[1]
BASELINE_ROWS = 300
TABLES = [
    Base.metadata.tables[t]
    for t in ("workforce_persons", "workforce_employments", "workforce_residences", "workforce_reminders")
]


def _rid(n: int) -> str:
    return make_resident_id("341221", dt.date(1985, 1, 1) + dt.timedelta(days=n // 1000), n % 1000)


def write_sheet(path: Path, rows: int, start: int = 0) -> None:
    wb = openpyxl.Workbook(write_only=True)
    ws = wb.create_sheet()
    ws.append(["姓名", "身份证号", "手机号", "入职日期", "宿舍地址", "岗位"])
    today = service.local_today()
    for n in range(start, start + rows):
        ws.append(
            [f"员工{n}", _rid(n), f"139{n:08d}", today - dt.timedelta(days=n % 300), "织里镇宿舍", "车工"]
        )
    wb.save(path)


async def prepare(url: str) -> Any:
    if url.startswith("postgresql"):  # a scratch database: start from an empty schema
        scratch = make_engine(url)
        async with scratch.begin() as conn:
            await conn.execute(text("DROP SCHEMA public CASCADE"))
            await conn.execute(text("CREATE SCHEMA public"))
        await scratch.dispose()

    def upgrade() -> None:
        cfg = Config(str(ROOT / "alembic.ini"))
        cfg.set_main_option("sqlalchemy.url", url)
        command.upgrade(cfg, "head")

    await asyncio.to_thread(upgrade)
    engine = make_engine(url)
    async with engine.begin() as conn:
        names = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
        if "workforce_persons" not in names:  # until the workforce migration lands
            await conn.run_sync(lambda c: Base.metadata.create_all(c, tables=TABLES))
    factory = make_sessionmaker(engine)
    async with factory() as s:
        s.add(UnitCategory(code="garment", name_zh="童装企业", name_en="Garment", sort_order=0))
        bureau = Bureau(code="bench", name="织里分局")
        s.add(bureau)
        await s.flush()
        station = Station(bureau_id=bureau.id, code="zb", name="织北派出所")
        s.add(station)
        await s.flush()
        units = [
            Unit(
                name=f"基准童装厂{i}",
                credit_code=f"91330502MA2B0000{i}X",
                category_code="garment",
                station_id=station.id,
            )
            for i in range(2)
        ]
        s.add_all(units)
        await s.commit()
        return engine, factory, units[0].id, units[1].id


async def run(url: str, rows: int) -> dict[str, Any]:
    engine, factory, unit_a, unit_b = await prepare(url)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "hr.xlsx"
        write_sheet(path, rows)
        t = time.perf_counter()
        raw = transfer.read_sheet(path)
        read_s = time.perf_counter() - t
        t = time.perf_counter()
        today = service.local_today()
        for line, cells in raw:
            transfer.validate_row(line, cells, today)
        validate_s = time.perf_counter() - t
        async with factory() as s:
            t = time.perf_counter()
            report = await transfer.import_hires(s, SYSTEM, unit_a, path)
            import_s = time.perf_counter() - t
        assert report.hires == rows  # an import of nothing measures nothing
    today = service.local_today()
    t = time.perf_counter()
    for n in range(rows, rows + BASELINE_ROWS):
        async with factory() as s:
            await service.hire(
                s,
                SYSTEM,
                schemas.HireIn(
                    unit_id=unit_b, name=f"员工{n}", id_number=_rid(n), phone=f"139{n:08d}", hired_on=today
                ),
            )
    naive_s = time.perf_counter() - t
    if engine.dialect.name == "postgresql":
        async with engine.begin() as conn:
            await conn.execute(text("DROP SCHEMA public CASCADE"))
            await conn.execute(text("CREATE SCHEMA public"))
    await engine.dispose()
    return {
        "read_s": round(read_s, 2),
        "validate_s": round(validate_s, 2),
        "import_s": round(import_s, 2),
        "rows_per_s": round(rows / import_s),
        "baseline_rows": BASELINE_ROWS,
        "baseline_rows_per_s": round(BASELINE_ROWS / naive_s),
        "baseline_extrapolated_s": round(naive_s / BASELINE_ROWS * rows, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rows", type=int, default=None)
    parser.add_argument("--pg", default=None, help="URL of an empty scratch PostgreSQL database")
    args = parser.parse_args()
    rows = args.rows or (1000 if args.quick else 5000)
    result: dict[str, Any] = {"rows": rows}
    with tempfile.TemporaryDirectory() as tmp:
        sqlite = asyncio.run(run(f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}", rows))
    base = sqlite["baseline_extrapolated_s"]
    print(f"SQLite: {rows:,} rows imported in {sqlite['import_s']} s", end=" ")
    print(f"(read {sqlite['read_s']} s, validate {sqlite['validate_s']} s); one-by-one baseline ≈ {base} s")
    result["sqlite"] = sqlite
    result["import_s"] = sqlite["import_s"]
    result["baseline_s"] = sqlite["baseline_extrapolated_s"]
    if args.pg:
        pg = asyncio.run(run(args.pg, rows))
        base = pg["baseline_extrapolated_s"]
        print(f"PostgreSQL: {rows:,} rows imported in {pg['import_s']} s; one-by-one baseline ≈ {base} s")
        result["postgresql"] = pg
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    main()
