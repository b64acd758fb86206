"""HR-sheet import: a clean sheet is written whole, a bad one reports every bad row and writes nothing."""

from __future__ import annotations

import datetime as dt
import io
import time
from pathlib import Path

import httpx
import openpyxl
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from eqian.core.permissions import Principal
from eqian.workforce import transfer
from eqian.workforce.models import Employment, Person, Residence
from tests.factories import bearer, make_world
from tests.workforce.helpers import TODAY, assert_no_pii, hire, hire_body, mobile, rid

HEAD_ZH = ["姓名", "身份证号", "手机号", "入职日期", "宿舍地址", "岗位"]


def xlsx(rows: list[list[object]], head: list[str] = HEAD_ZH) -> bytes:
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(["织里贝贝童装 员工花名册"])  # a title row above the header, as HR sheets have
    ws.append(head)
    for row in rows:
        ws.append(row)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def good_row(n: int, hired: object = None) -> list[object]:
    return [f"员工{n}", rid(n), mobile(n), hired or TODAY - dt.timedelta(days=5), "宿舍3幢", "车工"]


async def _counts(db: AsyncSession) -> tuple[int, int, int]:
    return (
        int(await db.scalar(select(func.count()).select_from(Person)) or 0),
        int(await db.scalar(select(func.count()).select_from(Employment)) or 0),
        int(await db.scalar(select(func.count()).select_from(Residence)) or 0),
    )


async def test_clean_sheet_imports_every_row(db: AsyncSession, client: httpx.AsyncClient) -> None:
    w = await make_world(db)
    h = await bearer(db, w.users["unit_security"])
    rows = [good_row(1), good_row(2, "2025/3/4"), good_row(3, f"{TODAY:%Y%m%d}")]
    data = xlsx(rows)
    dry = await client.post(
        "/api/v1/workers/import",
        data={"unit_id": str(w.units["a1"]), "dry_run": "true"},
        files={"file": ("花名册.xlsx", data)},
        headers=h,
    )
    assert dry.status_code == 201, dry.text
    assert dry.json()["dry_run"] is True
    assert await _counts(db) == (0, 0, 0)
    resp = await client.post(
        "/api/v1/workers/import",
        data={"unit_id": str(w.units["a1"])},
        files={"file": ("花名册.xlsx", data)},
        headers=h,
    )
    assert resp.status_code == 201, resp.text
    assert resp.json() == {"dry_run": False, "rows": 3, "created_persons": 3, "hires": 3, "errors": []}
    assert await _counts(db) == (3, 3, 3)
    hired = sorted(await db.scalars(select(Employment.hired_on)))
    assert dt.date(2025, 3, 4) in hired


async def test_english_headers_and_returning_worker(db: AsyncSession, client: httpx.AsyncClient) -> None:
    w = await make_world(db)
    admin = await bearer(db, w.users["bureau_admin"])
    first = await hire(client, admin, hire_body(w.units["b1"], 5, hired_on=TODAY - dt.timedelta(days=60)))
    await client.post(
        f"/api/v1/workers/{first['id']}/departure", json={"left_on": TODAY.isoformat()}, headers=admin
    )
    csv = (
        "name,id_number,phone,hired_on\n"
        + f"王五,{rid(5)},{mobile(5)},{TODAY}\n"
        + f"赵六,{rid(6)},{mobile(6)},{TODAY}\n"
    )
    resp = await client.post(
        "/api/v1/workers/import",
        data={"unit_id": str(w.units["a1"])},
        files={"file": ("hr.csv", csv.encode())},
        headers=admin,
    )
    assert resp.status_code == 201, resp.text
    assert resp.json()["created_persons"] == 1
    assert await _counts(db) == (2, 3, 2)


async def test_bad_sheet_reports_every_row_and_writes_nothing(
    db: AsyncSession, client: httpx.AsyncClient
) -> None:
    w = await make_world(db)
    admin = await bearer(db, w.users["bureau_admin"])
    await hire(client, admin, hire_body(w.units["b1"], 50))  # active elsewhere
    await hire(client, admin, hire_body(w.units["a1"], 51))  # active here
    before = await _counts(db)
    bad_check = rid(9)[:17] + ("0" if rid(9)[17] != "0" else "1")
    rows: list[list[object]] = [
        good_row(1),  # line 3: fine
        [*good_row(2)[:1], bad_check, *good_row(2)[2:]],  # line 4: check digit
        [*good_row(3)[:2], "12345", *good_row(3)[3:]],  # line 5: phone
        good_row(1),  # line 6: duplicate of line 3
        ["", rid(4), mobile(4), "2025-13-01", "", ""],  # line 7: name and date
        good_row(50),  # line 8: still employed elsewhere
        good_row(51),  # line 9: already here
    ]
    resp = await client.post(
        "/api/v1/workers/import",
        data={"unit_id": str(w.units["a1"])},
        files={"file": ("hr.xlsx", xlsx(rows))},
        headers=admin,
    )
    assert resp.status_code == 422, resp.text
    body = resp.json()["error"]
    assert body["code"] == "import_failed"
    got = [(d["line"], d["field"]) for d in body["details"]]
    assert got == [
        (4, "id_number"),
        (5, "phone"),
        (6, "id_number"),
        (7, "name"),
        (7, "hired_on"),
        (8, "id_number"),
        (9, "id_number"),
    ]
    assert "仍在其他单位在职" in body["details"][5]["message"]
    assert "织南" not in resp.text
    assert_no_pii(resp.text)
    assert await _counts(db) == before


async def test_unreadable_and_headerless_files(db: AsyncSession, client: httpx.AsyncClient) -> None:
    w = await make_world(db)
    admin = await bearer(db, w.users["bureau_admin"])
    for name, content in (("a.xlsx", b"not a zip"), ("a.xls", b"x"), ("a.csv", b"foo,bar\n1,2\n")):
        resp = await client.post(
            "/api/v1/workers/import",
            data={"unit_id": str(w.units["a1"])},
            files={"file": (name, content)},
            headers=admin,
        )
        assert resp.status_code == 422, (name, resp.text)
    assert await _counts(db) == (0, 0, 0)


@pytest.mark.parametrize("rows", [5000])
async def test_five_thousand_rows(db: AsyncSession, tmp_path: Path, rows: int) -> None:
    w = await make_world(db)
    actor = Principal.of(w.users["unit_security"])
    path = tmp_path / "big.xlsx"
    path.write_bytes(xlsx([good_row(n) for n in range(rows)]))
    started = time.perf_counter()
    report = await transfer.import_hires(db, actor, w.units["a1"], path)
    elapsed = time.perf_counter() - started
    print(f"imported {rows} rows in {elapsed:.2f} s ({db.get_bind().dialect.name})")
    assert report.hires == rows
    assert await _counts(db) == (rows, rows, rows)
