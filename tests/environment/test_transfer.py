"""XLSX import of a smelter's ledger (生产日报 / 库存盘点 / 转移联单): exact counts, every bad row with
its sheet and line, all-or-nothing, re-import refused, and who may import for which unit."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from eqian.core.accounts import Role, User
from eqian.core.audit import AuditLog
from eqian.core.errors import Forbidden, NotFound
from eqian.core.permissions import Principal
from eqian.environment.models import (
    Carrier,
    DisposalFacility,
    Manifest,
    ProductionReport,
    SmelterProcess,
    StockCount,
)
from eqian.environment.transfer import LedgerImportFailed, LedgerImportResult, import_ledger
from eqian.organizations.models import JointZone, Unit
from tests.factories import World, make_world

LOCAL = dt.timezone(dt.timedelta(hours=8))
PRODUCTION_HEADER = ["日期", "工序", "铝产量(吨)"]
STOCK_HEADER = ["盘点时间", "铝灰库存(吨)"]
MANIFEST_HEADER = ["联单编号", "转移时间", "数量(吨)", "运输单位", "车牌号", "接收单位"]
CARRIER = "湖州织里安达危险品运输有限公司"
FACILITY = "湖州织里绿源环保科技有限公司"


@dataclass
class Smelter:
    world: World
    unit_id: int
    processes: dict[str, int]
    carrier_id: int
    facility_id: int

    def actor(self, username: str) -> Principal:
        return Principal.of(self.world.users[username])


async def _smelter(db: AsyncSession) -> Smelter:
    w = await make_world(db)
    unit_id = w.units["a1"]  # station A; the unit_security account's own unit
    melting = SmelterProcess(unit_id=unit_id, name="熔炼", coefficient_kg_per_t=40.0)
    refining = SmelterProcess(unit_id=unit_id, name="精炼", coefficient_kg_per_t=25.0)
    other = SmelterProcess(unit_id=w.units["b1"], name="熔炼", coefficient_kg_per_t=35.0)
    carrier = Carrier(name=CARRIER, licence_no="浙交运管许可湖字330502000318号")
    facility = DisposalFacility(
        name=FACILITY, licence_no="浙危废经第3305020017号", licensed_capacity_t_per_year=12_000
    )
    db.add_all([melting, refining, other, carrier, facility])
    await db.flush()
    return Smelter(w, unit_id, {"熔炼": melting.id, "精炼": refining.id}, carrier.id, facility.id)


def _cell(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> dt.datetime:
    """A date cell as Excel holds it: wall-clock time, no zone."""
    return dt.datetime(year, month, day, hour, minute)  # noqa: DTZ001


def _workbook(path: Path, sheets: dict[str, Sequence[Sequence[Any]]]) -> Path:
    wb = openpyxl.Workbook()
    default = wb.active
    for title, rows in sheets.items():
        ws = wb.create_sheet(title)
        for row in rows:
            ws.append(list(row))
    if default is not None:
        wb.remove(default)
    wb.save(path)
    return path


def _good(path: Path) -> Path:
    return _workbook(
        path,
        {
            "填写说明": [["本表由企业安全员每日填写"], ["数量单位：吨"]],
            "生产日报": [
                ["织里某铝业有限公司 生产日报"],  # a title row above the header
                PRODUCTION_HEADER,
                [_cell(2025, 3, 1), "熔炼", 40.5],
                ["2025-03-01", "精炼", "22.25"],
                [None, None, None],  # blank rows in between are nobody's business
                ["2025/3/2", " 熔炼 ", "38 吨"],
            ],
            "库存盘点": [
                STOCK_HEADER,
                [_cell(2025, 2, 28, 20, 0), 3.2],
                ["2025-03-02", 4.75],  # no time: the day's closing count, 23:59
                [_cell(2025, 3, 3), 5.1],  # an Excel date cell (midnight): the same
            ],
            # English field names are accepted too.
            "转移联单": [
                ["manifest_no", "shipped_at", "shipped_t", "carrier", "vehicle_plate", "facility", "备注"],
                ["3305022025000101", _cell(2025, 3, 1, 9, 30), 2.6, CARRIER, "浙E·3K721", FACILITY, ""],
                ["3305022025000102", "2025-03-02 10:15", "1.9", CARRIER, "浙E3K721", FACILITY, "夜班灰"],
            ],
        },
    )


async def _counts(db: AsyncSession) -> tuple[int, int, int, int]:
    return (
        await db.scalar(select(func.count()).select_from(ProductionReport)) or 0,
        await db.scalar(select(func.count()).select_from(StockCount)) or 0,
        await db.scalar(select(func.count()).select_from(Manifest)) or 0,
        await db.scalar(select(func.count()).select_from(AuditLog)) or 0,
    )


async def _import(
    sessionmaker: async_sessionmaker[AsyncSession],
    actor: Principal,
    unit_id: int,
    path: Path,
    *,
    dry_run: bool = False,
) -> LedgerImportResult:
    async with sessionmaker() as session:
        return await import_ledger(session, actor, unit_id, path, dry_run=dry_run)


async def test_good_workbook_imports_with_exact_counts(
    db: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    s = await _smelter(db)
    path = _good(tmp_path / "恒泰铝业台账.xlsx")
    actor = s.actor("unit_security")

    result = await _import(sessionmaker, actor, s.unit_id, path)
    assert (result.production, result.stock_counts, result.manifests, result.total) == (3, 3, 2, 8)
    assert not result.dry_run
    assert await _counts(db) == (3, 3, 2, 1)

    production = (await db.scalars(select(ProductionReport).order_by(ProductionReport.id))).all()
    assert [(p.produced_on, p.process_id, p.aluminium_t) for p in production] == [
        (dt.date(2025, 3, 1), s.processes["熔炼"], 40.5),
        (dt.date(2025, 3, 1), s.processes["精炼"], 22.25),
        (dt.date(2025, 3, 2), s.processes["熔炼"], 38.0),
    ]
    assert {p.unit_id for p in production} == {s.unit_id}
    assert {p.entered_by for p in production} == {actor.user_id}
    counts = (await db.scalars(select(StockCount).order_by(StockCount.counted_at))).all()
    assert [(c.counted_at, c.ash_t) for c in counts] == [
        (dt.datetime(2025, 2, 28, 20, 0, tzinfo=LOCAL), 3.2),
        (dt.datetime(2025, 3, 2, 23, 59, tzinfo=LOCAL), 4.75),
        (dt.datetime(2025, 3, 3, 23, 59, tzinfo=LOCAL), 5.1),
    ]
    manifests = (await db.scalars(select(Manifest).order_by(Manifest.manifest_no))).all()
    assert [(m.manifest_no, m.shipped_at, m.shipped_t, m.vehicle_plate, m.note) for m in manifests] == [
        ("3305022025000101", dt.datetime(2025, 3, 1, 9, 30, tzinfo=LOCAL), 2.6, "浙E3K721", ""),
        ("3305022025000102", dt.datetime(2025, 3, 2, 10, 15, tzinfo=LOCAL), 1.9, "浙E3K721", "夜班灰"),
    ]
    assert {(m.carrier_id, m.facility_id) for m in manifests} == {(s.carrier_id, s.facility_id)}

    audit_row = await db.scalar(select(AuditLog))
    assert audit_row is not None
    assert (audit_row.action, audit_row.actor_name, audit_row.entity_id) == (
        "env.ledger.import",
        "unit_security",
        str(s.unit_id),
    )
    assert audit_row.changes is not None
    assert audit_row.changes["file"] == path.name
    assert (
        audit_row.changes["production"],
        audit_row.changes["stock_counts"],
        audit_row.changes["manifests"],
    ) == (3, 3, 2)

    # The same workbook again: every row is already in the ledger, and nothing is written twice.
    with pytest.raises(LedgerImportFailed) as caught:
        await _import(sessionmaker, actor, s.unit_id, path)
    assert {e.code for e in caught.value.errors} == {"already_registered"}
    assert len(caught.value.errors) == 8
    assert await _counts(db) == (3, 3, 2, 1)


async def test_dry_run_counts_and_writes_nothing(
    db: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    s = await _smelter(db)
    result = await _import(
        sessionmaker, s.actor("station_officer"), s.unit_id, _good(tmp_path / "a.xlsx"), dry_run=True
    )
    assert (result.production, result.stock_counts, result.manifests, result.dry_run) == (3, 3, 2, True)
    assert await _counts(db) == (0, 0, 0, 0)


async def test_bad_rows_on_every_sheet_are_all_reported_and_nothing_is_written(
    db: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    s = await _smelter(db)
    # A manifest number the unit registered before.
    db.add(
        Manifest(
            unit_id=s.unit_id,
            manifest_no="3305022025000009",
            shipped_at=dt.datetime(2025, 2, 20, 1, 0, tzinfo=dt.UTC),
            shipped_t=3.0,
            carrier_id=s.carrier_id,
            vehicle_plate="浙E12345",
            facility_id=s.facility_id,
        )
    )
    await db.flush()
    path = _workbook(
        tmp_path / "bad.xlsx",
        {
            "生产日报": [
                PRODUCTION_HEADER,
                ["2025-03-01", "熔炼", 40],  # line 2: fine
                ["2025-03-01", "压铸", 12],  # line 3: no such process at this smelter
                ["2025-02-30", "精炼", 20],  # line 4: no such day
                ["2025-03-02", "熔炼", -5],  # line 5: negative
            ],
            "库存盘点": [
                STOCK_HEADER,
                ["上周五", 3.0],  # line 2: not a date
                ["2025-03-02 20:00", "-1.5"],  # line 3: negative
            ],
            "转移联单": [
                MANIFEST_HEADER,
                ["3305022025000101", "2025-03-01 09:30", 2.5, CARRIER, "浙E3K721", FACILITY],  # line 2: fine
                ["3305022025000101", "2025-03-01 14:00", 2.0, CARRIER, "浙E3K721", FACILITY],  # 3: duplicate
                ["3305022025000103", "2025-03-02 09:00", 2.0, "无证物流公司", "浙E3K721", FACILITY],  # 4
                ["3305022025000104", "2025-03-02 10:00", 2.0, CARRIER, "浙E3K721", "私人堆场"],  # 5
                ["3305022025000009", "2025-03-02 11:00", 2.0, CARRIER, "浙E3K721", FACILITY],  # 6
                ["3305022025000106", "2025-03-02 12:00", 0, CARRIER, "浙E3K721", FACILITY],  # 7: zero
            ],
        },
    )
    before = await _counts(db)
    with pytest.raises(LedgerImportFailed) as caught:
        await _import(sessionmaker, s.actor("unit_security"), s.unit_id, path)
    failure = caught.value
    assert (failure.status_code, failure.code) == (422, "import_failed")
    found = {(e.sheet, e.line, e.field, e.code) for e in failure.errors}
    assert found == {
        ("生产日报", 3, "process", "unknown_process"),
        ("生产日报", 4, "produced_on", "bad_date"),
        ("生产日报", 5, "aluminium_t", "negative"),
        ("库存盘点", 2, "counted_at", "bad_date"),
        ("库存盘点", 3, "ash_t", "negative"),
        ("转移联单", 3, "manifest_no", "duplicate"),
        ("转移联单", 4, "carrier", "unknown_carrier"),
        ("转移联单", 5, "facility", "unknown_facility"),
        ("转移联单", 6, "manifest_no", "already_registered"),
        ("转移联单", 7, "shipped_t", "not_positive"),
    }
    assert len(failure.errors) == len(found)
    assert all(e.message for e in failure.errors)
    assert "压铸" in next(e.message for e in failure.errors if e.code == "unknown_process")
    assert failure.details == [
        {"sheet": e.sheet, "line": e.line, "field": e.field, "code": e.code, "message": e.message}
        for e in failure.errors
    ]
    # Sorted as the clerk reads the workbook: sheet by sheet, line by line.
    assert [(e.sheet, e.line) for e in failure.errors] == sorted(
        [(e.sheet, e.line) for e in failure.errors],
        key=lambda k: (["生产日报", "库存盘点", "转移联单"].index(k[0]), k[1]),
    )
    assert await _counts(db) == before


async def test_layout_problems(
    db: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    s = await _smelter(db)
    actor = s.actor("bureau_admin")
    missing = _workbook(tmp_path / "missing.xlsx", {"生产日报": [["日期", "铝产量(吨)"], ["2025-03-01", 40]]})
    with pytest.raises(LedgerImportFailed) as caught:
        await _import(sessionmaker, actor, s.unit_id, missing)
    assert [(e.sheet, e.line, e.field, e.code) for e in caught.value.errors] == [
        ("生产日报", 1, "process", "missing_column")
    ]
    other = _workbook(tmp_path / "other.xlsx", {"Sheet1": [["单位名称", "地址"], ["某公司", "织里"]]})
    with pytest.raises(LedgerImportFailed) as caught:
        await _import(sessionmaker, actor, s.unit_id, other)
    assert [e.code for e in caught.value.errors] == ["no_sheets"]
    broken = tmp_path / "broken.xlsx"
    broken.write_bytes(b"not a workbook")
    with pytest.raises(LedgerImportFailed) as caught:
        await _import(sessionmaker, actor, s.unit_id, broken)
    assert [e.code for e in caught.value.errors] == ["bad_file"]
    assert await _counts(db) == (0, 0, 0, 0)


CASES: list[tuple[str, str, type[Exception] | None]] = [
    ("bureau_admin", "a1", None),
    ("station_officer", "a1", None),  # station A's officer, a1 is in station A
    ("unit_security", "a1", None),  # a1's own security head
    ("station_officer_b", "a1", NotFound),  # another station's unit does not exist for them
    ("unit_security", "b1", NotFound),  # somebody else's smelter
    ("mediator", "a1", NotFound),
    ("service_point_staff", "a1", Forbidden),  # a1 is at their service point, but they keep no ledgers
    ("liaison_officer", "a1", Forbidden),  # a1 is theirs to look after, not to book
    ("partner_officer", "a1", Forbidden),  # in the joint zone, but the partner agency only reads
    ("bureau_admin", "a2", NotFound),  # an ordinary unit: no smelter, no ledger
]


async def test_who_may_import_for_which_unit(
    db: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    s = await _smelter(db)
    zone = JointZone(
        code="qiaolou",
        name="乔溇联勤警务站核心区",
        partner_agency="苏州市公安局吴江分局",
        station_id=s.world.station_a,
        polygon=[[30.83, 120.25], [30.83, 120.27], [30.85, 120.27], [30.85, 120.25]],  # around a1
    )
    db.add(zone)
    await db.flush()
    partner = User(
        username="partner_officer",
        display_name="沈某（吴江分局·乔溇联勤）",
        password_hash=s.world.users["bureau_admin"].password_hash,
        role=Role.PARTNER_OFFICER.value,
        zone_id=zone.id,
    )
    db.add(partner)
    await db.flush()
    await db.execute(update(Unit).where(Unit.id == s.unit_id).values(joint_zone_id=zone.id))
    s.world.users["partner_officer"] = partner

    path = _good(tmp_path / "ledger.xlsx")
    for username, label, outcome in CASES:
        actor = s.actor(username)
        unit_id = s.world.units[label]
        if outcome is None:
            result = await _import(sessionmaker, actor, unit_id, path, dry_run=True)
            assert result.total == 8, username
        else:
            with pytest.raises(outcome):
                await _import(sessionmaker, actor, unit_id, path)
    with pytest.raises(NotFound):
        await _import(sessionmaker, s.actor("bureau_admin"), 2**40, path)  # not even an id
    assert await _counts(db) == (0, 0, 0, 0)
