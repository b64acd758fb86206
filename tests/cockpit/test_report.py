"""The monthly report: the workbook and the printable page carry the cockpit's figures."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy.ext.asyncio import AsyncSession

from eqian.cockpit import report
from eqian.core.errors import NotFound
from tests.cockpit.test_summary import build

pytestmark = pytest.mark.usefixtures("raw_table")


async def test_monthly_report_workbook_and_page(db: AsyncSession, tmp_path: Path) -> None:
    await build(db)
    data = await report.gather(db, "织北派出所", "2026-03")
    kpis = {k["code"]: k for k in data.summary["kpis"]}
    assert (kpis["incidents_total"]["value"], kpis["incidents_total"]["year_before"]) == (3, 5)
    assert [w["unit"] for w in data.watch] == ["吾悦广场", "织里贝贝童装有限公司"]  # lowest score first

    xlsx = report.write_xlsx(data, tmp_path / "r.xlsx")
    wb = load_workbook(xlsx)
    rows = {r[0]: r for r in wb["概览"].iter_rows(min_row=5, values_only=True) if r[0]}
    assert rows["警情总数"][1:4] == (3, 5, "-40.0%")
    assert rows["指令签收率"][1] == 1.0
    assert rows["发现隐患"][1] == 2
    assert wb["趋势"]["A2"].value == "2025-03"
    with zipfile.ZipFile(xlsx) as z:  # the native Excel charts (openpyxl does not read them back)
        assert sorted(n for n in z.namelist() if n.startswith("xl/charts/chart")) == [
            "xl/charts/chart1.xml",
            "xl/charts/chart2.xml",
        ]
    assert wb["重点关注单位"]["A2"].value == "吾悦广场"

    page = report.write_html(data, tmp_path / "r.html").read_text(encoding="utf-8")
    assert "织北派出所 2026-03 月度警企共治报告" in page
    assert "<script" not in page
    assert page.count("<svg") == len(report.TREND_KPIS) + len(report.CATEGORY_KPIS)
    assert "-40.0%" in page

    with pytest.raises(NotFound):
        await report.gather(db, "不存在派出所", "2026-03")
