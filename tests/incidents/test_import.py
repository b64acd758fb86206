"""Import of a 110 export: classified, linked and routed rows; every bad row reported with its line
and field and nothing written; a second import of the same file creates nothing."""

from __future__ import annotations

import csv
from pathlib import Path

import openpyxl
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from eqian.core import outbox
from eqian.core.permissions import Principal
from eqian.incidents import transfer
from eqian.incidents.models import Incident, IncidentEvent
from eqian.organizations.models import Unit
from tests.incidents.helpers import make_inc_world

HEADER = [
    "接警编号",
    "报警时间",
    "报警电话",
    "事发地址",
    "报警内容",
    "警情类别",
    "统一社会信用代码",
    "管辖派出所",
]


async def _rows(db: AsyncSession) -> int:
    return await db.scalar(select(func.count()).select_from(Incident)) or 0


def _write_csv(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(HEADER)
        writer.writerows(rows)
    return path


async def test_import_csv_then_again(db: AsyncSession, tmp_path: Path) -> None:
    iw = await make_inc_world(db)
    officer = Principal.of(iw.world.users["station_officer"])
    admin = Principal.of(iw.world.users["bureau_admin"])
    b1_code = await db.scalar(select(Unit.credit_code).where(Unit.id == iw.world.units["b1"]))
    rows = [
        [
            "J001",
            "2026-03-01 08:15",
            "13912345678",
            "织里镇大港路1号",
            "贝贝童装的工人说老板拖欠三个月工资",
            "",
            "",
            "",
        ],
        ["J002", "2026/3/1 9:30", "", "", "有人在珍贝路被电信诈骗转账两万元", "诈骗", b1_code, ""],
        [
            "",
            "2026-03-02 21:00",
            "0572-3012345",
            "织南某小区",
            "邻居装修噪音太大发生争吵",
            "",
            "",
            "织南派出所",
        ],
        ["J004", "2026-03-03 10:00", "", "", "吾悦广场三楼有小孩走失，家长求助", "", "", ""],
    ]
    path = _write_csv(tmp_path / "110.csv", rows)
    result = await transfer.import_file(db, admin, path)
    assert (result.rows, result.created, result.skipped) == (4, 4, 0)
    got = {i.source_key: i for i in await db.scalars(select(Incident).order_by(Incident.id))}
    j1, j2, j4 = got["n:J001"], got["n:J002"], got["n:J004"]
    assert (j1.unit_id, j1.category, j1.police, j1.route) == (
        iw.world.units["a1"],
        "labor",
        False,
        "self_governance",
    )
    assert (j2.unit_id, j2.category, j2.category_source, j2.route) == (
        iw.world.units["b1"],
        "fraud",
        "import",
        "dispatch",
    )
    assert j2.link_method == "ref"
    assert j2.station_id == iw.world.station_b
    assert j4.unit_id == iw.world.units["a2"]
    assert j4.category == "help"
    assert j4.route == "self_governance"
    hashed = next(i for k, i in got.items() if k.startswith("h:"))
    assert hashed.station_id == iw.world.station_b
    assert hashed.unit_id is None
    assert hashed.category == "neighbor"
    assert hashed.route == "mediation"
    assert j1.reported_at.isoformat() == "2026-03-01T00:15:00+00:00"  # local time 08:15 → UTC
    assert await db.scalar(select(func.count()).select_from(IncidentEvent)) == 4
    reported = await db.scalar(
        select(func.count())
        .select_from(outbox.OutboxEvent)
        .where(outbox.OutboxEvent.topic == "incidents.reported")
    )
    assert reported == 4

    # The same file again: nothing new. A station officer importing another station's row is refused.
    again = await transfer.import_file(db, admin, path)
    assert (again.created, again.skipped) == (0, 4)
    assert await _rows(db) == 4
    with pytest.raises(transfer.ImportFailed) as exc:
        await transfer.import_file(db, officer, _write_csv(tmp_path / "b.csv", [["J005", *rows[1][1:]]]))
    assert [(e.line, e.field, e.code) for e in exc.value.errors] == [(2, "unit_ref", "unknown_unit")]


async def test_bad_rows_are_all_reported_and_nothing_written(db: AsyncSession, tmp_path: Path) -> None:
    iw = await make_inc_world(db)
    admin = Principal.of(iw.world.users["bureau_admin"])
    rows = [
        ["J1", "2026-03-01 08:15", "", "", "工人讨薪", "", "", "织北派出所"],  # fine
        ["J2", "昨天晚上", "139abc", "", "盗窃电动车", "", "", "织北派出所"],  # time, phone
        ["J3", "2026-03-01 08:15", "", "", "", "打架", "", "织北派出所"],  # description, category
        ["J4", "2026-03-01 08:15", "", "", "有人报警", "", "91330000XXXXXXXXXX", ""],  # unit
        ["J5", "2026-03-01 08:15", "", "", "有人报警", "", "", "月球派出所"],  # station
    ]
    with pytest.raises(transfer.ImportFailed) as exc:
        await transfer.import_file(db, admin, _write_csv(tmp_path / "bad.csv", rows))
    assert [(e.line, e.field) for e in exc.value.errors] == [
        (3, "reported_at"),
        (3, "caller_phone"),
        (4, "description"),
        (4, "category"),
        (5, "unit_ref"),
        (6, "station"),
    ]
    assert "4 行共 6 处错误" in exc.value.message
    assert await _rows(db) == 0
    # A file without the required columns names them.
    path = tmp_path / "nohead.csv"
    path.write_text("姓名,电话\n张三,1\n", encoding="utf-8")
    with pytest.raises(transfer.ImportFailed) as exc:
        await transfer.import_file(db, admin, path)
    assert {e.field for e in exc.value.errors} == {"reported_at", "description"}


async def test_import_xlsx_and_dry_run(db: AsyncSession, tmp_path: Path) -> None:
    iw = await make_inc_world(db)
    admin = Principal.of(iw.world.users["bureau_admin"])
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(["织里分局110警情导出"])  # a title row above the header
    ws.append(HEADER)
    ws.append(["X1", "2026-04-01 10:00", "13912345678", "", "康泰小区物业报告楼道起火冒烟", "", "", ""])
    path = tmp_path / "110.xlsx"
    wb.save(path)
    dry = await transfer.import_file(db, admin, path, dry_run=True)
    assert (dry.created, dry.by_route["dispatch"]) == (1, 1)
    assert await _rows(db) == 0
    done = await transfer.import_file(db, admin, path)
    assert done.created == 1
    incident = await db.scalar(select(Incident))
    assert incident is not None
    assert (incident.category, incident.severity, incident.unit_id) == ("fire", "high", iw.world.units["a3"])
