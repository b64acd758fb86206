"""Unit import/export against a real database: creates, upserts, all-or-nothing, scope, audit.

Each import runs in a fresh session from ``sessionmaker``, as the CLI and the API do; the ``db``
fixture (autocommit) only sets up and inspects.
"""

from __future__ import annotations

import csv
import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from eqian.core import audit
from eqian.core.accounts import Role
from eqian.core.audit import AuditLog
from eqian.core.db import BULK_ROWS
from eqian.core.errors import Conflict, Forbidden, ValidationFailed
from eqian.core.ids import make_credit_code
from eqian.core.permissions import Principal
from eqian.organizations import transfer
from eqian.organizations.models import Unit
from eqian.organizations.service import WRITE_ROLES
from eqian.organizations.transfer import COLUMNS, ImportFailed, ImportResult
from tests.factories import World, credit_code, make_world

Sessions = async_sessionmaker[AsyncSession]
Row = Mapping[str, str] | None  # None is a blank spreadsheet row

HEADER = [zh for _, zh in COLUMNS]
TITLE = "织里镇重点单位信息表"


@pytest.fixture
async def world(db: AsyncSession) -> World:
    return await make_world(db)


def actor(world: World, username: str) -> Principal:
    return Principal.of(world.users[username])


def _cells(row: Row) -> list[str]:
    return [] if row is None else [row.get(name, "") for name, _ in COLUMNS]


def write_csv(path: Path, rows: Sequence[Row], *, title: str | None = None) -> Path:
    with path.open("w", encoding="utf-8-sig", newline="") as f:
        writer = csv.writer(f)
        if title is not None:
            writer.writerow([title])
        writer.writerow(HEADER)
        writer.writerows(_cells(r) for r in rows)
    return path


def write_xlsx(path: Path, rows: Sequence[Row], *, title: str | None = None) -> Path:
    wb = openpyxl.Workbook()
    ws = wb.active
    if title is not None:
        ws.append([title])
    ws.append(HEADER)
    for r in rows:
        ws.append(_cells(r))
    wb.save(path)
    return path


def write_file(path: Path, rows: Sequence[Row], *, title: str | None = None) -> Path:
    writer = write_xlsx if path.suffix == ".xlsx" else write_csv
    return writer(path, rows, title=title)


def new_row(code: str | None = None, **values: str) -> dict[str, str]:
    return {
        "name": "织里新开童装有限公司",
        "credit_code": code or credit_code(),
        "category": "童装企业",
        "station": "织北派出所",
        **values,
    }


async def run_import(
    sessionmaker: Sessions, who: Principal, path: Path, *, dry_run: bool = False
) -> ImportResult:
    async with sessionmaker() as session:
        return await transfer.import_units(session, who, path, dry_run=dry_run)


async def run_export(sessionmaker: Sessions, who: Principal, path: Path) -> int:
    async with sessionmaker() as session:
        return await transfer.export_units(session, who, path)


async def units_table(db: AsyncSession) -> list[tuple[Any, ...]]:
    # Core rows, not ORM objects: the world's units sit in db's identity map with stale values.
    rows = await db.execute(select(Unit.__table__).order_by(Unit.id))
    return [tuple(r) for r in rows]


async def audit_table(db: AsyncSession) -> list[tuple[Any, ...]]:
    rows = await db.execute(select(AuditLog.__table__).order_by(AuditLog.seq))
    return [tuple(r) for r in rows]


async def snapshot(db: AsyncSession) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    return await units_table(db), await audit_table(db)


async def unit_by_code(db: AsyncSession, code: str) -> Mapping[str, Any]:
    row = (await db.execute(select(Unit.__table__).where(Unit.credit_code == code))).mappings().one()
    return dict(row)


async def code_of(db: AsyncSession, unit_id: int) -> str:
    code = await db.scalar(select(Unit.credit_code).where(Unit.id == unit_id))
    assert code is not None
    return code


def bad_check_char(code: str) -> str:
    last = "1" if code[-1] != "1" else "2"
    return code[:-1] + last


def files_in(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def exported_rows(path: Path) -> list[dict[str, Any]]:
    if path.suffix == ".xlsx":
        wb = openpyxl.load_workbook(path, read_only=True)
        try:
            grid = [list(r) for r in wb.active.iter_rows(values_only=True)]
        finally:
            wb.close()
    else:
        with path.open(encoding="utf-8-sig", newline="") as f:
            grid = list(csv.reader(f))
    assert grid[0] == HEADER
    return [dict(zip([name for name, _ in COLUMNS], r, strict=True)) for r in grid[1:]]


# --- creating -----------------------------------------------------------------------------------


async def test_valid_csv_creates_units_and_one_audit_row(
    db: AsyncSession, sessionmaker: Sessions, world: World, tmp_path: Path
) -> None:
    c1, c2, c3 = credit_code(), credit_code(), credit_code()
    path = write_csv(
        tmp_path / "新增单位.csv",
        [
            new_row(
                c1,
                service_point="大港路服务点",
                address="织里镇大港路88号",
                lat="30.8712",
                lng="120.2345",
                employee_count="1,200",
                above_scale="是",
                status="停业整顿",
            ),
            # Codes and English names are accepted as well as the Chinese display names.
            new_row(c2.lower(), name="中通快递珍贝路网点", category="logistics", station="zhinan"),
            new_row(c3, name="织南小学", category="School / kindergarten", station="织南派出所"),
        ],
    )
    before = await units_table(db)

    result = await run_import(sessionmaker, actor(world, "bureau_admin"), path)

    assert (result.created, result.updated, result.unchanged, result.errors) == (3, 0, 0, [])
    assert len(await units_table(db)) == len(before) + 3
    u1 = await unit_by_code(db, c1)
    assert u1["name"] == "织里新开童装有限公司"
    assert (u1["station_id"], u1["service_point_id"], u1["category_code"]) == (
        world.station_a,
        world.sp_a,
        "garment",
    )
    assert (u1["address"], u1["lat"], u1["lng"]) == ("织里镇大港路88号", 30.8712, 120.2345)
    assert (u1["employee_count"], u1["above_scale"], u1["status"]) == (1200, True, "suspended")
    u2 = await unit_by_code(db, c2)  # stored upper-cased, as the API would
    assert (u2["station_id"], u2["service_point_id"], u2["category_code"]) == (
        world.station_b,
        None,
        "logistics",
    )
    # Blank cells give a new unit the defaults.
    assert (u2["address"], u2["lat"], u2["lng"]) == ("", None, None)
    assert (u2["employee_count"], u2["above_scale"], u2["status"]) == (0, False, "active")
    u3 = await unit_by_code(db, c3)
    assert (u3["station_id"], u3["category_code"]) == (world.station_b, "education")

    logs = await db.scalars(select(AuditLog).order_by(AuditLog.seq))
    [log] = logs.all()
    assert (log.action, log.entity, log.actor_name) == ("unit.import", "unit", "bureau_admin")
    assert log.actor_id == world.users["bureau_admin"].id
    assert log.changes == {"file": "新增单位.csv", "created": 3, "updated": 0}


async def test_station_officer_imports_into_own_station(
    db: AsyncSession, sessionmaker: Sessions, world: World, tmp_path: Path
) -> None:
    code = credit_code()
    path = write_xlsx(tmp_path / "u.xlsx", [new_row(code, station="zhibei", service_point="大港路服务点")])
    result = await run_import(sessionmaker, actor(world, "station_officer"), path)
    assert (result.created, result.updated) == (1, 0)
    unit = await unit_by_code(db, code)
    assert (unit["station_id"], unit["service_point_id"]) == (world.station_a, world.sp_a)


# --- all or nothing -----------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
async def test_every_bad_row_is_reported_by_line_and_nothing_is_written(
    db: AsyncSession, sessionmaker: Sessions, world: World, tmp_path: Path, suffix: str
) -> None:
    dup = credit_code()
    a1_code, b1_code = await code_of(db, world.units["a1"]), await code_of(db, world.units["b1"])
    rows: list[Row] = [
        # line 1 is a title, line 2 the header
        new_row(address="织里镇\n大港路1号"),  # 3: fine; a newline inside a cell is still one row
        None,  # 4: blank
        new_row(bad_check_char(credit_code())),  # 5
        new_row(category="玩具厂"),  # 6
        new_row(station="织南派出所"),  # 7: not the officer's station
        new_row(service_point="珍贝路服务点"),  # 8: a 织南 service point
        new_row(dup),  # 9: fine
        new_row(dup),  # 10: same code as line 9
        new_row(employee_count="五十", lat="北纬30度"),  # 11: two bad numbers
        new_row(b1_code),  # 12: registered at 织南
        new_row(a1_code, name="织里贝贝童装集团"),  # 13: a fine update
    ]
    path = write_file(tmp_path / f"units{suffix}", rows, title=TITLE)
    before = await snapshot(db)

    with pytest.raises(ImportFailed) as info:
        await run_import(sessionmaker, actor(world, "station_officer"), path)

    errors = info.value.errors
    assert [(e.line, e.field, e.code) for e in errors] == [
        (5, "credit_code", "invalid_credit_code"),
        (6, "category", "unknown_category"),
        (7, "station", "unknown_station"),
        (8, "service_point", "service_point_mismatch"),
        (10, "credit_code", "duplicate_in_file"),
        (11, "lat", "invalid_number"),
        (11, "employee_count", "invalid_integer"),
        (12, "credit_code", "registered_elsewhere"),
    ]
    assert "第 9 行" in errors[4].message  # names the line it repeats
    assert info.value.status_code == 422
    assert [d["line"] for d in info.value.details] == [e.line for e in errors]
    assert "7 行共 8 处错误" in info.value.message
    assert await snapshot(db) == before


@pytest.mark.parametrize("kind", ["bad_number", "registered_elsewhere", "duplicate_of_first"])
async def test_a_bad_last_row_after_many_good_ones_writes_nothing(
    db: AsyncSession, sessionmaker: Sessions, world: World, tmp_path: Path, kind: str
) -> None:
    n = 400
    codes = [make_credit_code(f"92330502M{i:08d}") for i in range(n)]
    rows: list[Row] = [
        new_row(code, name=f"织里第{i}童装厂", employee_count=str(i)) for i, code in enumerate(codes)
    ]
    # The file's first half also updates every unit already at 织北.
    for label in ("a1", "a2", "a3"):
        rows.insert(1, new_row(await code_of(db, world.units[label]), name=f"{label}改名童装厂"))
    last_line = len(rows) + 2
    expected: tuple[str, str]
    if kind == "bad_number":
        rows.append(new_row(employee_count="-3"))
        expected = ("employee_count", "out_of_range")
    elif kind == "registered_elsewhere":
        rows.append(new_row(await code_of(db, world.units["b2"])))
        expected = ("credit_code", "registered_elsewhere")
    else:
        rows.append(new_row(codes[0]))
        expected = ("credit_code", "duplicate_in_file")
    path = write_csv(tmp_path / "many.csv", rows)
    before = await snapshot(db)

    with pytest.raises(ImportFailed) as info:
        await run_import(sessionmaker, actor(world, "station_officer"), path)

    assert [(e.line, e.field, e.code) for e in info.value.errors] == [(last_line, *expected)]
    assert await snapshot(db) == before
    # The same file without its last row goes in whole.
    write_csv(path, rows[:-1])
    result = await run_import(sessionmaker, actor(world, "station_officer"), path)
    assert (result.created, result.updated) == (n, 3)
    assert len(await units_table(db)) == len(before[0]) + n


async def test_a_race_on_a_credit_code_is_a_conflict_that_writes_nothing(
    db: AsyncSession, sessionmaker: Sessions, world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As if another clerk registered the code between our lookup and our insert.
    async def nothing_exists(session: AsyncSession, codes: Sequence[str]) -> dict[str, dict[str, Any]]:
        return {}

    monkeypatch.setattr(transfer, "_existing_units", nothing_exists)
    a1_code = await code_of(db, world.units["a1"])
    path = write_csv(tmp_path / "u.csv", [new_row(), new_row(a1_code)])
    before = await snapshot(db)
    with pytest.raises(Conflict):
        await run_import(sessionmaker, actor(world, "bureau_admin"), path)
    assert await snapshot(db) == before


# --- updating -----------------------------------------------------------------------------------


async def test_existing_credit_code_updates_in_place(
    db: AsyncSession, sessionmaker: Sessions, world: World, tmp_path: Path
) -> None:
    a1, a2, a3 = [await unit_by_code(db, await code_of(db, world.units[x])) for x in ("a1", "a2", "a3")]
    fresh = credit_code()
    path = write_csv(
        tmp_path / "upsert.csv",
        [
            # a1: new name and head-count; the blank cells keep what the station recorded.
            {
                "name": "织里贝贝童装集团有限公司",
                "credit_code": a1["credit_code"].lower(),
                "category": "童装企业",
                "station": "织北派出所",
                "employee_count": "120",
            },
            # a2: moves to 织南 and leaves its 织北 service point.
            {
                "name": a2["name"],
                "credit_code": a2["credit_code"],
                "category": "商场市场",
                "station": "织南派出所",
            },
            # a3: everything as it is.
            {
                "name": a3["name"],
                "credit_code": a3["credit_code"],
                "category": "property",
                "station": "zhibei",
            },
            new_row(fresh),
        ],
    )
    before_count = len(await units_table(db))

    result = await run_import(sessionmaker, actor(world, "bureau_admin"), path)

    assert (result.created, result.updated, result.unchanged) == (1, 2, 1)
    assert len(await units_table(db)) == before_count + 1
    new_a1 = await unit_by_code(db, a1["credit_code"])
    assert new_a1["id"] == a1["id"]
    assert (new_a1["name"], new_a1["employee_count"]) == ("织里贝贝童装集团有限公司", 120)
    for kept in ("address", "lat", "lng", "service_point_id", "station_id", "status", "created_at"):
        assert new_a1[kept] == a1[kept], kept
    assert new_a1["updated_at"] > a1["updated_at"]
    new_a2 = await unit_by_code(db, a2["credit_code"])
    assert (new_a2["station_id"], new_a2["service_point_id"]) == (world.station_b, None)
    assert await unit_by_code(db, a3["credit_code"]) == a3  # not even updated_at moves
    [log] = (await db.scalars(select(AuditLog))).all()
    assert log.changes == {"file": "upsert.csv", "created": 1, "updated": 2}


async def test_existing_code_outside_scope_is_an_error_that_reveals_nothing(
    db: AsyncSession, sessionmaker: Sessions, world: World, tmp_path: Path
) -> None:
    b1 = await unit_by_code(db, await code_of(db, world.units["b1"]))
    path = write_csv(tmp_path / "u.csv", [new_row(b1["credit_code"], name="织北冒名童装厂")])
    before = await snapshot(db)

    with pytest.raises(ImportFailed) as info:
        await run_import(sessionmaker, actor(world, "station_officer"), path)

    [err] = info.value.errors
    assert (err.line, err.field, err.code) == (2, "credit_code", "registered_elsewhere")
    said = repr((info.value.message, info.value.details))
    for secret in (b1["name"], "织南", "珍贝路", b1["address"], "安安"):
        assert secret not in said
    assert await snapshot(db) == before


@pytest.mark.parametrize("username", ["liaison_officer", "unit_security", "mediator", "service_point_staff"])
async def test_only_bureau_admin_and_station_officer_may_import(
    db: AsyncSession, sessionmaker: Sessions, world: World, tmp_path: Path, username: str
) -> None:
    path = write_csv(tmp_path / "u.csv", [new_row()])
    before = await snapshot(db)
    with pytest.raises(Forbidden):
        await run_import(sessionmaker, actor(world, username), path)
    with pytest.raises(Forbidden):
        await run_import(sessionmaker, actor(world, username), path, dry_run=True)
    assert await snapshot(db) == before


@pytest.mark.parametrize("role", [r for r in Role if r not in WRITE_ROLES])
async def test_every_role_but_the_writers_is_forbidden(
    db: AsyncSession, sessionmaker: Sessions, world: World, tmp_path: Path, role: Role
) -> None:
    # Roles added later (partner officers, ...) are covered too, even with a wide scope.
    who = dataclasses.replace(actor(world, "bureau_admin"), role=role)
    before = await snapshot(db)
    with pytest.raises(Forbidden):
        await run_import(sessionmaker, who, write_csv(tmp_path / "u.csv", [new_row()]))
    assert await snapshot(db) == before


# --- dry run ------------------------------------------------------------------------------------


async def test_dry_run_counts_like_a_real_import_and_writes_nothing(
    db: AsyncSession, sessionmaker: Sessions, world: World, tmp_path: Path
) -> None:
    a1_code = await code_of(db, world.units["a1"])
    path = write_csv(
        tmp_path / "u.csv", [new_row(), new_row(), new_row(a1_code, name="织里贝贝童装集团有限公司")]
    )
    before = await snapshot(db)

    dry = await run_import(sessionmaker, actor(world, "station_officer"), path, dry_run=True)

    assert (dry.created, dry.updated, dry.unchanged) == (2, 1, 0)
    assert await snapshot(db) == before
    bad = write_csv(tmp_path / "bad.csv", [new_row(), new_row(category="?")])
    with pytest.raises(ImportFailed) as info:
        await run_import(sessionmaker, actor(world, "station_officer"), bad, dry_run=True)
    assert [(e.line, e.field) for e in info.value.errors] == [(3, "category")]
    assert await snapshot(db) == before

    real = await run_import(sessionmaker, actor(world, "station_officer"), path)
    assert (real.created, real.updated, real.unchanged) == (dry.created, dry.updated, dry.unchanged)
    assert len(await units_table(db)) == len(before[0]) + 2


# --- export -------------------------------------------------------------------------------------


async def _add_awkward_units(db: AsyncSession, world: World) -> None:
    """Values that a naive CSV/XLSX writer or reader would bend."""
    db.add_all(
        [
            Unit(
                name='=HYPERLINK("http://x")童装',
                credit_code=credit_code(),
                category_code="garment",
                station_id=world.station_a,
                address='织里镇"大河路", 3幢\n2楼',
                lat=30.871234567891,
                lng=120.1,
                employee_count=0,
                above_scale=True,
                status="suspended",
            ),
            Unit(
                name="-号仓库",
                credit_code=credit_code(),
                category_code="hazchem",
                station_id=world.station_a,
                service_point_id=world.sp_a,
                address="'@旧厂房",
                employee_count=999_999,
                status="closed",
            ),
            Unit(
                name="'+加号童装",
                credit_code=credit_code(),
                category_code="garment",
                station_id=world.station_b,
                service_point_id=world.sp_b,
                lat=-0.5,
                lng=-179.999999,
            ),
        ]
    )
    await db.commit()


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
@pytest.mark.parametrize("username", ["bureau_admin", "station_officer"])
async def test_export_then_reimport_changes_nothing(
    db: AsyncSession, sessionmaker: Sessions, world: World, tmp_path: Path, suffix: str, username: str
) -> None:
    await _add_awkward_units(db, world)
    who = actor(world, username)
    path = tmp_path / f"export{suffix}"
    written = await run_export(sessionmaker, who, path)
    units_before = await units_table(db)
    in_scope = 8 if username == "bureau_admin" else 5
    assert written == in_scope

    result = await run_import(sessionmaker, who, path)

    assert (result.created, result.updated, result.unchanged) == (0, 0, in_scope)
    assert await units_table(db) == units_before
    assert files_in(tmp_path) == [path.name]  # no temporary .part file left beside it


async def test_xlsx_round_trip_keeps_full_precision_coordinates(
    db: AsyncSession, sessionmaker: Sessions, world: World, tmp_path: Path
) -> None:
    lat, lng = 30.871234567890123, 120.25912345678901  # what a map picker sends to the API
    assert len(repr(lat).replace(".", "")) == 17
    db.add(
        Unit(
            name="地图选点童装厂",
            credit_code=credit_code(),
            category_code="garment",
            station_id=world.station_a,
            lat=lat,
            lng=lng,
        )
    )
    await db.commit()
    who = actor(world, "bureau_admin")
    path = tmp_path / "export.xlsx"
    await run_export(sessionmaker, who, path)
    units_before = await units_table(db)

    result = await run_import(sessionmaker, who, path)

    assert (result.created, result.updated) == (0, 0)
    assert await units_table(db) == units_before


async def test_more_units_than_one_lookup_chunk_round_trip(
    db: AsyncSession, sessionmaker: Sessions, world: World, tmp_path: Path
) -> None:
    n = transfer.CREDIT_CODE_CHUNK * 2 + 100
    rows: list[Row] = [
        new_row(make_credit_code(f"93330502N{i:08d}"), name=f"织北第{i}号童装厂", employee_count=str(i % 90))
        for i in range(n)
    ]
    path = write_csv(tmp_path / "big.csv", rows)
    admin = actor(world, "bureau_admin")
    assert (await run_import(sessionmaker, admin, path)).created == n

    out = tmp_path / "big-export.csv"
    assert await run_export(sessionmaker, admin, out) == n + 5
    again = await run_import(sessionmaker, admin, out)
    assert (again.created, again.updated, again.unchanged) == (0, 0, n + 5)

    edited = [dict(r, employee_count="1000") if r is not None else r for r in rows[-3:]]
    edit = write_csv(tmp_path / "edit.csv", edited)
    result = await run_import(sessionmaker, admin, edit)
    assert (result.created, result.updated) == (0, 3)


async def test_export_refuses_unknown_file_types_and_leaves_nothing_behind(
    sessionmaker: Sessions, world: World, tmp_path: Path
) -> None:
    with pytest.raises(ValidationFailed):
        await run_export(sessionmaker, actor(world, "bureau_admin"), tmp_path / "units.xls")
    assert files_in(tmp_path) == []


VISIBLE = {
    "bureau_admin": ("a1", "a2", "a3", "b1", "b2"),
    "station_officer": ("a1", "a2", "a3"),
    "station_officer_b": ("b1", "b2"),
    "liaison_officer": ("a1",),
    "unit_security": ("a1",),
    "mediator": (),
    "service_point_staff": ("a1", "a2"),
}


@pytest.mark.parametrize("username", list(VISIBLE))
async def test_export_holds_only_the_actors_units(
    db: AsyncSession, sessionmaker: Sessions, world: World, tmp_path: Path, username: str
) -> None:
    path = tmp_path / "out.csv"
    written = await run_export(sessionmaker, actor(world, username), path)
    rows = exported_rows(path)
    assert written == len(rows)
    assert {r["credit_code"] for r in rows} == {await code_of(db, world.units[x]) for x in VISIBLE[username]}


async def test_station_officer_xlsx_export_is_their_station_only(
    db: AsyncSession, sessionmaker: Sessions, world: World, tmp_path: Path
) -> None:
    path = tmp_path / "织北.xlsx"
    assert await run_export(sessionmaker, actor(world, "station_officer"), path) == 3
    rows = exported_rows(path)
    assert {r["station"] for r in rows} == {"织北派出所"}
    assert sorted(r["name"] for r in rows) == sorted(["织里贝贝童装有限公司", "吾悦广场", "康泰小区物业"])
    assert {r["service_point"] for r in rows} <= {"大港路服务点", "", None}


# --- the audit chain ----------------------------------------------------------------------------


async def test_audit_chain_stays_intact_across_imports(
    db: AsyncSession, sessionmaker: Sessions, world: World, tmp_path: Path
) -> None:
    async with sessionmaker() as session:
        await audit.record(session, actor_id=None, actor_name="system", action="test.before", entity="x")
        await session.commit()
    officer, admin = actor(world, "station_officer"), actor(world, "bureau_admin")
    good = write_csv(tmp_path / "good.csv", [new_row(), new_row()])
    bad = write_csv(tmp_path / "bad.csv", [new_row(), new_row(station="织南派出所")])

    await run_import(sessionmaker, officer, good)
    with pytest.raises(ImportFailed):
        await run_import(sessionmaker, officer, bad)
    await run_import(sessionmaker, officer, write_csv(tmp_path / "dry.csv", [new_row()]), dry_run=True)
    await run_import(sessionmaker, admin, write_csv(tmp_path / "more.csv", [new_row()]))
    async with sessionmaker() as session:
        await audit.record(session, actor_id=None, actor_name="system", action="test.after", entity="x")
        await session.commit()

    async with sessionmaker() as session:
        result = await audit.verify(session)
    assert result.ok, result.problems
    assert result.rows == 4
    rows = (await db.execute(select(AuditLog.seq, AuditLog.action, AuditLog.actor_name))).all()
    assert sorted(rows) == [
        (1, "test.before", "system"),
        (2, "unit.import", "station_officer"),
        (3, "unit.import", "bureau_admin"),
        (4, "test.after", "system"),
    ]


async def _analyze_count(db: AsyncSession, table: str) -> int | None:
    if db.get_bind().dialect.name != "postgresql":
        return None
    await db.execute(text("SELECT pg_stat_clear_snapshot()"))
    return await db.scalar(
        text("SELECT analyze_count FROM pg_stat_user_tables WHERE relname = :t"), {"t": table}
    )


async def test_a_large_import_refreshes_the_planners_statistics(
    db: AsyncSession, sessionmaker: Sessions, world: World, tmp_path: Path
) -> None:
    """On PostgreSQL the units table is analysed after an import of ≥ BULK_ROWS rows (a freshly
    filled table without statistics gets nested-loop plans), not after a small one; SQLite is
    left to its own heuristics."""
    admin = actor(world, "bureau_admin")
    before = await _analyze_count(db, "units")
    small = write_csv(tmp_path / "small.csv", [new_row(make_credit_code("93330502C00000001"))])
    assert (await run_import(sessionmaker, admin, small)).created == 1
    assert await _analyze_count(db, "units") == before
    rows: list[Row] = [
        new_row(make_credit_code(f"93330502B{i:08d}"), name=f"织北第{i}号印染厂") for i in range(BULK_ROWS)
    ]
    assert (await run_import(sessionmaker, admin, write_csv(tmp_path / "big.csv", rows))).created == BULK_ROWS
    after = await _analyze_count(db, "units")
    if before is None:  # SQLite: no statistics table was made
        assert await db.scalar(text("SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_stat1'")) == 0
    else:
        assert after == before + 1
