"""The monthly report of a station: the cockpit's figures as an XLSX workbook (openpyxl, with
native Excel charts) and a printable HTML page (inline SVG charts, no scripts, A4 print CSS).

A PDF is made only when a Chromium binary is on the PATH (``chromium --headless
--print-to-pdf``): no new Python dependency, and the HTML prints the same from any browser.
"""

from __future__ import annotations

import datetime as dt
import html
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup
from openpyxl import Workbook
from openpyxl.chart import BarChart, LineChart, Reference
from openpyxl.styles import Alignment, Font, PatternFill
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from eqian.cockpit import rollups, service
from eqian.core.errors import NotFound
from eqian.core.months import LOCAL_TZ
from eqian.core.months import check as check_month
from eqian.core.permissions import SYSTEM
from eqian.organizations.models import Station, Unit, UnitCategory

TREND_KPIS = (
    "incidents_total",
    "incidents_enterprise",
    "mediation_cases",
    "hazards_found",
    "requests_submitted",
)
CATEGORY_KPIS = ("incidents_total", "mediation_cases", "hazards_found", "hazards_rectified", "ack_rate")
WATCH_LIST = 10


@dataclass
class ReportData:
    station: str
    station_id: int
    month: str
    generated_at: dt.datetime
    summary: dict[str, Any]
    trends: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    categories: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    watch: list[dict[str, Any]] = field(default_factory=list)


async def gather(session: AsyncSession, station_name: str, month: str) -> ReportData:
    check_month(month)
    station = await session.scalar(select(Station).where(Station.name == station_name))
    if station is None:
        station = await session.scalar(select(Station).where(Station.code == station_name))
    if station is None:
        raise NotFound(f"派出所不存在：{station_name}")
    f = service.Filters(month=month, station_id=station.id)
    data = ReportData(
        station=station.name,
        station_id=station.id,
        month=month,
        generated_at=dt.datetime.now(dt.UTC),
        summary=await service.summary(session, SYSTEM, f),
    )
    for code in TREND_KPIS:
        data.trends[code] = await service.trend(session, SYSTEM, f, code, 13)
    for code in CATEGORY_KPIS:
        data.categories[code] = await service.breakdown(session, SYSTEM, f, code, "category")
    if await rollups.has_table(session, "safety_index_scores"):
        s = rollups.index_scores
        rows = await session.execute(
            select(Unit.name, UnitCategory.name_zh, s.c.score, s.c.grade)
            .join(Unit, Unit.id == s.c.unit_id)
            .join(UnitCategory, UnitCategory.code == Unit.category_code)
            .where(s.c.month == month, Unit.station_id == station.id)
            .order_by(s.c.score, Unit.id)
            .limit(WATCH_LIST)
        )
        data.watch = [{"unit": r[0], "category": r[1], "score": r[2], "grade": r[3]} for r in rows]
    return data


# --- formatting ----------------------------------------------------------------------------------


def fmt(kind: str, value: float | None) -> str:
    if value is None:
        return "—"
    if kind == "rate":
        return f"{value * 100:.1f}%"
    return f"{value:,.0f}"


def fmt_change(kind: str, change: float | None, pct: float | None) -> str:
    if change is None:
        return "—"
    if kind == "rate":
        return f"{change:+.1f} 个百分点"
    return f"{pct:+.1f}%" if pct is not None else f"{change:+,.0f}"


def _labels() -> dict[str, str]:
    return {k.code: k.label for k in service.KPIS}


# --- XLSX ----------------------------------------------------------------------------------------

HEAD = Font(bold=True, color="FFFFFF")
HEAD_FILL = PatternFill("solid", fgColor="0B4A8B")


def _header(ws: Any, row: int, values: list[str]) -> None:
    for col, value in enumerate(values, start=1):
        cell = ws.cell(row=row, column=col, value=value)
        cell.font = HEAD
        cell.fill = HEAD_FILL
        cell.alignment = Alignment(horizontal="center")


def write_xlsx(data: ReportData, path: Path) -> Path:
    wb = Workbook()
    ws = wb.active
    ws.title = "概览"
    ws["A1"] = f"{data.station} {data.month} 月度警企共治报告"
    ws["A1"].font = Font(bold=True, size=14)
    ws["A2"] = f"同比：与 {data.summary['year_before']} 比；环比：与 {data.summary['month_before']} 比"
    _header(ws, 4, ["指标", "本月", "去年同期", "同比", "上月", "环比"])
    for i, k in enumerate(data.summary["kpis"], start=5):
        rate = k["kind"] == "rate"
        values = [k["value"], k["year_before"], None, k["month_before"], None]
        ws.cell(row=i, column=1, value=k["label"])
        for col, v in zip((2, 3, 5), (values[0], values[1], values[3]), strict=True):
            cell = ws.cell(row=i, column=col, value=v)
            cell.number_format = "0.0%" if rate else "#,##0"
        ws.cell(row=i, column=4, value=fmt_change(k["kind"], k["yoy_change"], k["yoy_change_pct"]))
        ws.cell(row=i, column=6, value=fmt_change(k["kind"], k["mom_change"], k["mom_change_pct"]))
    row = 6 + len(data.summary["kpis"])
    ws.cell(row=row, column=1, value="企业平安指数分布").font = Font(bold=True)
    _header(ws, row + 1, ["等级", "本月", "去年同期", "上月"])
    for j, (_, g) in enumerate(data.summary["index_distribution"].items(), start=row + 2):
        for col, v in enumerate((g["label"], g["value"], g["year_before"], g["month_before"]), start=1):
            ws.cell(row=j, column=col, value=v)
    ws.column_dimensions["A"].width = 22
    for letter in "BCDEF":
        ws.column_dimensions[letter].width = 15

    labels = _labels()
    tr = wb.create_sheet("趋势")
    months = [p["month"] for p in next(iter(data.trends.values()))] if data.trends else []
    _header(tr, 1, ["月份", *[labels[c] for c in data.trends]])
    for i, m in enumerate(months, start=2):
        tr.cell(row=i, column=1, value=m)
        for j, code in enumerate(data.trends, start=2):
            tr.cell(row=i, column=j, value=data.trends[code][i - 2]["value"])
    if months:
        chart = LineChart()
        chart.title = "近13个月趋势"
        chart.height, chart.width = 9, 22
        chart.add_data(
            Reference(tr, min_col=2, max_col=1 + len(data.trends), min_row=1, max_row=1 + len(months)),
            titles_from_data=True,
        )
        chart.set_categories(Reference(tr, min_col=1, min_row=2, max_row=1 + len(months)))
        tr.add_chart(chart, f"A{len(months) + 4}")
    tr.column_dimensions["A"].width = 12

    cat = wb.create_sheet("分类")
    row = 1
    for code, items in data.categories.items():
        kind = service.KPI_BY_CODE[code].kind
        cat.cell(row=row, column=1, value=labels[code]).font = Font(bold=True)
        _header(cat, row + 1, ["单位类别", "数值", "分子", "分母"])
        for i, it in enumerate(items, start=row + 2):
            cat.cell(row=i, column=1, value=it["label"])
            cell = cat.cell(row=i, column=2, value=it["value"])
            cell.number_format = "0.0%" if kind == "rate" else "#,##0"
            cat.cell(row=i, column=3, value=it["numerator"])
            cat.cell(row=i, column=4, value=it["denominator"] if kind == "rate" else None)
        if items and code == CATEGORY_KPIS[0]:
            bar = BarChart()
            bar.type = "bar"
            bar.title = f"{labels[code]}（按单位类别）"
            bar.height, bar.width = 8, 16
            bar.add_data(
                Reference(cat, min_col=2, min_row=row + 1, max_row=row + 1 + len(items)),
                titles_from_data=True,
            )
            bar.set_categories(Reference(cat, min_col=1, min_row=row + 2, max_row=row + 1 + len(items)))
            cat.add_chart(bar, "F2")
        row += len(items) + 4
    cat.column_dimensions["A"].width = 18

    idx = wb.create_sheet("重点关注单位")
    _header(idx, 1, ["单位", "类别", "平安指数", "等级"])
    for i, w in enumerate(data.watch, start=2):
        for col, v in enumerate(
            (w["unit"], w["category"], w["score"], service.GRADE_LABELS.get(w["grade"], w["grade"])), start=1
        ):
            idx.cell(row=i, column=col, value=v)
    idx.column_dimensions["A"].width = 30
    path.parent.mkdir(parents=True, exist_ok=True)
    wb.save(path)
    return path


# --- HTML ----------------------------------------------------------------------------------------

TEMPLATES = Path(__file__).with_name("templates")
SVG_OPEN = '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" width="100%" role="img">'


def _text(x: float, y: float, body: str, size: int = 10, anchor: str = "middle") -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" fill="#444">'
        f"{html.escape(body)}</text>"
    )


def svg_line(points: list[dict[str, Any]], kind: str, width: int = 640, height: int = 200) -> str:
    """A small line chart (this year solid, the year before dashed) as inline SVG."""
    left, right, top_pad, bottom = 48, 12, 12, 28
    values = [p["value"] for p in points] + [p["year_before"] for p in points]
    top = max([v for v in values if v is not None] or [0]) or 1
    n = max(len(points) - 1, 1)

    def x(i: int) -> float:
        return left + (width - left - right) * i / n

    def y(v: float) -> float:
        return height - bottom - (height - top_pad - bottom) * v / top

    def line(key: str, style: str) -> str:
        pts = " ".join(f"{x(i):.1f},{y(p[key]):.1f}" for i, p in enumerate(points) if p[key] is not None)
        return f'<polyline fill="none" {style} points="{pts}"/>'

    parts = [
        SVG_OPEN.format(w=width, h=height),
        f'<line x1="{left}" y1="{height - bottom}" x2="{width - right}" y2="{height - bottom}" '
        'stroke="#999"/>',
        _text(left - 6, top_pad + 8, fmt(kind, top), anchor="end"),
        _text(left - 6, height - bottom, "0", anchor="end"),
        line("year_before", 'stroke="#9aa5b1" stroke-width="1.5" stroke-dasharray="4 3"'),
        line("value", 'stroke="#1667b7" stroke-width="2.2"'),
        *[_text(x(i), height - 8, p["month"][2:]) for i, p in enumerate(points) if i % 2 == 0],
        "</svg>",
    ]
    return "".join(parts)


def svg_bars(items: list[dict[str, Any]], kind: str, width: int = 640) -> str:
    """Horizontal bars, largest first, as inline SVG."""
    rows = [i for i in items if i["value"]][:11]
    if not rows:
        return f"{SVG_OPEN.format(w=width, h=30)}{_text(width / 2, 20, '本月无数据', size=12)}</svg>"
    top = max(float(i["value"]) for i in rows) or 1
    parts = [SVG_OPEN.format(w=width, h=22 * len(rows) + 10)]
    for n, it in enumerate(rows):
        w = (width - 190) * float(it["value"]) / top
        y = 5 + n * 22
        parts.append(_text(118, y + 14, str(it["label"]), size=12, anchor="end"))
        parts.append(f'<rect x="124" y="{y + 3}" width="{w:.1f}" height="15" fill="#1667b7"/>')
        parts.append(_text(130 + w, y + 15, fmt(kind, it["value"]), size=11, anchor="start"))
    parts.append("</svg>")
    return "".join(parts)


def change_class(change: float | None, better: str) -> str:
    if change is None or change == 0 or not better:
        return ""
    return "good" if (change > 0) == (better == "up") else "bad"


def render_html(data: ReportData) -> str:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html", "j2"]))
    # ``.j2``: a standalone file for printing, not a page (its inline <style> is not served under our CSP)
    template = env.get_template("cockpit/report_print.html.j2")
    labels = _labels()
    return template.render(
        data=data,
        fmt=fmt,
        fmt_change=fmt_change,
        change_class=change_class,
        grade_labels=service.GRADE_LABELS,
        watch_list=WATCH_LIST,
        generated=data.generated_at.astimezone(LOCAL_TZ).strftime("%Y-%m-%d %H:%M"),
        trends=[
            (labels[c], Markup(svg_line(p, service.KPI_BY_CODE[c].kind)))  # noqa: S704 - built from escaped parts
            for c, p in data.trends.items()
        ],
        categories=[
            (labels[c], Markup(svg_bars(items, service.KPI_BY_CODE[c].kind)))  # noqa: S704
            for c, items in data.categories.items()
        ],
    )


def write_html(data: ReportData, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(data), encoding="utf-8")
    return path


def chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def write_pdf(html_path: Path, pdf_path: Path, browser: str) -> Path:
    """Print the HTML report with headless Chromium (no new Python dependency)."""
    subprocess.run(  # noqa: S603 - fixed arguments, our own file
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-pdf-header-footer",
            f"--print-to-pdf={pdf_path}",
            html_path.resolve().as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return pdf_path
