"""Import a smelter's ash ledger from the XLSX workbook it keeps.

One workbook per smelter, with up to three sheets (a missing sheet simply has nothing to import):

- 生产日报 (production): 日期, 工序, 铝产量(吨)
- 库存盘点 (stock): 盘点时间, 铝灰库存(吨)
- 转移联单 (manifests): 联单编号, 转移时间, 数量(吨), 运输单位, 车牌号, 接收单位

Headers may be the Chinese ones (with or without the unit, full- or half-width brackets) or the
English field names (``produced_on``, ``process``, ``aluminium_t``; ``counted_at``, ``ash_t``;
``manifest_no``, ``shipped_at``, ``shipped_t``, ``carrier``, ``vehicle_plate``, ``facility``).
Title rows above the header are skipped, as are sheets of other names (填写说明 …).

Times without an offset are Asia/Shanghai wall-clock time. A count dated without a time (or at
00:00 on the dot, which is how Excel keeps a bare date) is that day's closing count, 23:59; a
manifest dated without a time left at 00:00 of that day.

The import is all-or-nothing: every problem is reported as (sheet, line, field, code, message)
with the row number Excel shows, and a single one means nothing is written. Rows already in the
ledger (a manifest number, a day's production of a process, a count at the same time) are refused
rather than counted twice, so re-importing a workbook is harmless. Valid rows go in with one
audit row, the unit's checks run again, and it all commits as one transaction.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import math
import re
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import openpyxl
from openpyxl.utils.exceptions import InvalidFileException
from sqlalchemy import insert, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from eqian.core import audit
from eqian.core.accounts import Role
from eqian.core.db import table_of, utcnow
from eqian.core.errors import AppError, Conflict, Forbidden, NotFound
from eqian.core.permissions import Principal
from eqian.environment.balance import effective
from eqian.environment.checks import run_checks
from eqian.environment.models import (
    Carrier,
    DisposalFacility,
    Manifest,
    ProductionReport,
    SmelterProcess,
    StockCount,
)
from eqian.organizations.models import Unit
from eqian.organizations.service import unit_clause

LOCAL_TZ = ZoneInfo("Asia/Shanghai")
# Who may write a smelter's ledger; the scope (its station's officers, its own security head)
# comes from unit_clause.
WRITE_ROLES = (Role.BUREAU_ADMIN, Role.STATION_OFFICER, Role.UNIT_SECURITY)
# The advisory lock key of environment.service: ledger writes of one unit take turns on PostgreSQL,
# so two imports cannot both find a manifest number free.
_PG_LEDGER_LOCK = 7_365_002
MIN_YEAR, MAX_YEAR = 2000, 2100
CLOCK_SLACK = dt.timedelta(hours=1)
MAX_ALUMINIUM_T = 100_000.0
MAX_ASH_T = 1_000_000.0
MAX_SHIPPED_T = 1_000.0
MANIFEST_NO = re.compile(r"^[A-Za-z0-9\-]{4,32}$")
PLATE_LEN = (5, 16)
NOTE_MAX = 200
_HEADER_SCAN_ROWS = 10
_CHUNK = 2_000


# --- sheets and columns -------------------------------------------------------------------------


@dataclass(frozen=True)
class SheetSpec:
    kind: str  # production | stock | manifests
    title: str  # the Chinese sheet name smelters use
    aliases: tuple[str, ...]
    columns: tuple[tuple[str, str], ...]  # (field, Chinese header)


SHEETS: tuple[SheetSpec, ...] = (
    SheetSpec(
        "production",
        "生产日报",
        ("production", "生产记录", "生产台账"),
        (("produced_on", "日期"), ("process", "工序"), ("aluminium_t", "铝产量(吨)")),
    ),
    SheetSpec(
        "stock",
        "库存盘点",
        ("stock", "stock_counts", "库存", "盘点"),
        (("counted_at", "盘点时间"), ("ash_t", "铝灰库存(吨)")),
    ),
    SheetSpec(
        "manifests",
        "转移联单",
        ("manifests", "联单", "转移记录"),
        (
            ("manifest_no", "联单编号"),
            ("shipped_at", "转移时间"),
            ("shipped_t", "数量(吨)"),
            ("carrier", "运输单位"),
            ("vehicle_plate", "车牌号"),
            ("facility", "接收单位"),
        ),
    ),
)
OPTIONAL_COLUMNS: tuple[tuple[str, str], ...] = (("note", "备注"),)
_EXTRA_HEADERS: dict[str, str] = {  # other ways smelters title the same columns
    "生产日期": "produced_on",
    "date": "produced_on",
    "工艺": "process",
    "产量": "aluminium_t",
    "铝产量": "aluminium_t",
    "时间": "counted_at",
    "库存": "ash_t",
    "铝灰库存": "ash_t",
    "转移日期": "shipped_at",
    "转移数量": "shipped_t",
    "承运单位": "carrier",
    "车牌": "vehicle_plate",
    "处置单位": "facility",
}


def _norm(value: str) -> str:
    return re.sub(r"[\s*＊]+", "", value).replace("（", "(").replace("）", ")").casefold()


def _bare(header: str) -> str:
    """The header without its unit: 铝产量(吨) → 铝产量."""
    return re.sub(r"\(.*\)$", "", _norm(header))


def _header_fields(spec: SheetSpec) -> dict[str, str]:
    fields: dict[str, str] = {}
    for name, zh in (*spec.columns, *OPTIONAL_COLUMNS):
        fields[_norm(zh)] = fields[_bare(zh)] = fields[_norm(name)] = name
    names = {name for name, _ in spec.columns}
    fields.update({_norm(k): v for k, v in _EXTRA_HEADERS.items() if v in names})
    return fields


_FIELDS = {spec.kind: _header_fields(spec) for spec in SHEETS}
_LABELS = {spec.kind: dict((*spec.columns, *OPTIONAL_COLUMNS)) for spec in SHEETS}
_BY_TITLE = {_norm(t): spec for spec in SHEETS for t in (spec.title, spec.kind, *spec.aliases)}


# --- results and errors -------------------------------------------------------------------------


@dataclass(frozen=True)
class LedgerRowError:
    sheet: str  # the sheet's name as in the workbook ("" for the file itself)
    line: int  # the row number Excel shows (0 for the file itself)
    field: str | None
    code: str
    message: str


@dataclass(frozen=True)
class LedgerImportResult:
    unit_id: int
    production: int
    stock_counts: int
    manifests: int
    dry_run: bool = False
    alerts: dict[str, int] = field(default_factory=dict)  # findings of the unit's checks, by kind

    @property
    def total(self) -> int:
        return self.production + self.stock_counts + self.manifests


class LedgerImportFailed(AppError):
    status_code = 422
    code = "import_failed"

    def __init__(self, message: str, errors: Sequence[LedgerRowError] = ()) -> None:
        super().__init__(message, details=[asdict(e) for e in errors])
        self.errors: list[LedgerRowError] = list(errors)


def _failed(errors: list[LedgerRowError]) -> LedgerImportFailed:
    order = {spec.title: i for i, spec in enumerate(SHEETS)}
    ordered = sorted(errors, key=lambda e: (order.get(e.sheet, -1), e.sheet, e.line))
    rows = len({(e.sheet, e.line) for e in errors})
    return LedgerImportFailed(f"导入失败：{rows} 行共 {len(errors)} 处错误，未写入任何数据。", ordered)


# --- reading the workbook -----------------------------------------------------------------------


@dataclass
class SheetRows:
    spec: SheetSpec
    name: str  # as in the workbook
    rows: list[tuple[int, dict[str, Any]]]  # (Excel line, {field: raw cell value})


_BROKEN_XLSX = (InvalidFileException, zipfile.BadZipFile, OSError, KeyError, ValueError, SyntaxError)


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _cells(ws: Any) -> Iterator[tuple[int, list[Any]]]:
    ws.reset_dimensions()  # some writers record A1:A1 for a full sheet
    for line, values in enumerate(ws.iter_rows(values_only=True), start=1):
        yield line, list(values)


def _header_map(cells: Sequence[Any], spec: SheetSpec) -> dict[str, int]:
    fields = _FIELDS[spec.kind]
    found: dict[str, int] = {}
    for i, cell in enumerate(cells):
        if isinstance(cell, str):
            name = fields.get(_norm(cell)) or fields.get(_bare(cell))
            if name is not None and name not in found:
                found[name] = i
    return found


def _spec_by_header(lines: list[tuple[int, list[Any]]]) -> SheetSpec | None:
    for spec in SHEETS:
        required = {name for name, _ in spec.columns}
        if any(required <= set(_header_map(cells, spec)) for _, cells in lines[:_HEADER_SCAN_ROWS]):
            return spec
    return None


def read_workbook(path: Path) -> tuple[list[SheetRows], list[LedgerRowError]]:
    """The data rows of each ledger sheet, and the problems of the file's layout."""
    if path.suffix.lower() not in (".xlsx", ".xlsm"):
        raise LedgerImportFailed(
            f"不支持的文件类型「{path.suffix or '无扩展名'}」：请使用 .xlsx 文件。",
            [LedgerRowError("", 0, None, "bad_file", "请使用 .xlsx 文件")],
        )
    try:
        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except _BROKEN_XLSX as exc:
        raise LedgerImportFailed(
            f"无法读取 Excel 文件（文件已损坏或不是 .xlsx 格式）：{exc}",
            [LedgerRowError("", 0, None, "bad_file", "文件已损坏或不是 .xlsx 格式")],
        ) from None
    sheets: list[SheetRows] = []
    errors: list[LedgerRowError] = []
    seen: dict[str, str] = {}
    try:
        for ws in wb.worksheets:
            if not hasattr(ws, "iter_rows"):
                continue
            lines = [(line, cells) for line, cells in _cells(ws) if not all(_blank(c) for c in cells)]
            spec = _BY_TITLE.get(_norm(ws.title)) or _spec_by_header(lines)
            if spec is None:
                continue  # 填写说明 and other sheets of the smelter's own
            if spec.kind in seen:
                errors.append(
                    LedgerRowError(
                        ws.title,
                        0,
                        None,
                        "duplicate_sheet",
                        f"与工作表「{seen[spec.kind]}」重复（都是{spec.title}）",
                    )
                )
                continue
            seen[spec.kind] = ws.title
            sheet, problems = _sheet_rows(ws.title, spec, lines)
            errors.extend(problems)
            if sheet is not None:
                sheets.append(sheet)
    except _BROKEN_XLSX as exc:
        raise LedgerImportFailed(
            f"无法读取 Excel 文件：{exc}", [LedgerRowError("", 0, None, "bad_file", "文件已损坏")]
        ) from None
    finally:
        wb.close()
    if not seen:
        titles = "、".join(spec.title for spec in SHEETS)
        raise LedgerImportFailed(
            f"工作簿中没有台账工作表（{titles}）。",
            [LedgerRowError("", 0, None, "no_sheets", f"工作簿中没有 {titles} 工作表")],
        )
    return sheets, errors


def _sheet_rows(
    name: str, spec: SheetSpec, lines: list[tuple[int, list[Any]]]
) -> tuple[SheetRows | None, list[LedgerRowError]]:
    if not lines:
        return SheetRows(spec, name, []), []
    required = [field_ for field_, _ in spec.columns]
    header_at = next(
        (
            i
            for i, (_, cells) in enumerate(lines[:_HEADER_SCAN_ROWS])
            if set(required) <= set(_header_map(cells, spec))
        ),
        None,
    )
    if header_at is None:
        # The row with most of the headers is the one the clerk meant.
        header_at = max(
            range(min(len(lines), _HEADER_SCAN_ROWS)), key=lambda i: len(_header_map(lines[i][1], spec))
        )
        line, cells = lines[header_at]
        found = _header_map(cells, spec)
        labels = _LABELS[spec.kind]
        return None, [
            LedgerRowError(name, line, f, "missing_column", f"缺少列「{labels[f]}」（也可写英文字段名 {f}）")
            for f in required
            if f not in found
        ]
    columns = _header_map(lines[header_at][1], spec)
    rows = []
    for line, cells in lines[header_at + 1 :]:
        values = {f: cells[i] if i < len(cells) else None for f, i in columns.items()}
        if not all(_blank(v) for v in values.values()):
            rows.append((line, values))
    return SheetRows(spec, name, rows), []


# --- validating cells ---------------------------------------------------------------------------


_DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%Y.%m.%d", "%Y年%m月%d日", "%Y%m%d")
_TIME_FORMATS = ("%H:%M", "%H:%M:%S", "%H时%M分", "%H点%M分", "%H:%M:%S.%f")


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip().strip("\ufeff\u200b")


def parse_day(value: Any) -> dt.date | None:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    text_value = _text(value)
    for fmt in _DATE_FORMATS:
        try:
            return dt.datetime.strptime(text_value, fmt).date()  # noqa: DTZ007 - a calendar date, no zone
        except ValueError:
            continue
    return None


def parse_moment(value: Any) -> tuple[dt.datetime, bool] | None:
    """A local wall-clock time, and whether the cell gave a time of day at all.

    Excel keeps a bare date as that day's midnight, so 00:00 on the dot counts as no time.
    """
    if isinstance(value, dt.datetime):
        return value, value.time() != dt.time()
    if isinstance(value, dt.date):
        return dt.datetime.combine(value, dt.time()), False
    text_value = re.sub(r"\s+", " ", _text(value)).replace("T", " ")
    day_text, _, time_text = text_value.partition(" ")
    day = parse_day(day_text)
    if day is None:
        return None
    if not time_text:
        return dt.datetime.combine(day, dt.time()), False
    for fmt in _TIME_FORMATS:
        try:
            clock = dt.datetime.strptime(time_text, fmt).time()  # noqa: DTZ007 - wall-clock time
        except ValueError:
            continue
        return dt.datetime.combine(day, clock), True
    return None


def parse_tonnes(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value)
    else:
        text_value = _text(value).replace(",", "").replace("，", "")
        text_value = re.sub(r"\s*(吨|t|T)$", "", text_value)
        try:
            number = float(text_value)
        except ValueError:
            return None
    return number if math.isfinite(number) else None


@dataclass(frozen=True)
class Lookups:
    processes: Mapping[str, int]  # casefolded name -> process id (the unit's own)
    carriers: Mapping[str, int]  # casefolded name or licence -> id
    facilities: Mapping[str, int]
    process_names: tuple[str, ...]
    registered_manifests: frozenset[str]  # effective manifest numbers of the unit
    registered_production: frozenset[tuple[dt.date, int]]  # effective (day, process id)
    registered_counts: frozenset[dt.datetime]  # effective count times (UTC)
    today: dt.date
    now: dt.datetime


@dataclass
class _Parsed:
    production: list[dict[str, Any]] = field(default_factory=list)
    stock: list[dict[str, Any]] = field(default_factory=list)
    manifests: list[dict[str, Any]] = field(default_factory=list)


class _Checker:
    def __init__(self, lookups: Lookups) -> None:
        self.lookups = lookups
        self.errors: list[LedgerRowError] = []
        self.parsed = _Parsed()
        self.manifest_lines: dict[str, tuple[str, int]] = {}
        self.production_lines: dict[tuple[dt.date, int], int] = {}
        self.count_lines: dict[dt.datetime, int] = {}

    def check(self, sheets: list[SheetRows]) -> tuple[_Parsed, list[LedgerRowError]]:
        for sheet in sheets:
            for line, raw in sheet.rows:
                getattr(self, f"_{sheet.spec.kind}")(sheet, line, raw)
        return self.parsed, self.errors

    # --- helpers --------------------------------------------------------------------------------

    def _bad(self, sheet: SheetRows, line: int, field_: str, code: str, message: str) -> None:
        label = _LABELS[sheet.spec.kind].get(field_, field_)
        self.errors.append(LedgerRowError(sheet.name, line, field_, code, f"{label}：{message}"))

    def _required(self, sheet: SheetRows, line: int, raw: Mapping[str, Any], field_: str) -> Any:
        value = raw.get(field_)
        if _blank(value):
            self._bad(sheet, line, field_, "required", "不能为空")
            return None
        return value

    def _day(self, sheet: SheetRows, line: int, raw: Mapping[str, Any], field_: str) -> dt.date | None:
        value = self._required(sheet, line, raw, field_)
        if value is None:
            return None
        day = parse_day(value)
        if day is None:
            self._bad(sheet, line, field_, "bad_date", f"「{_text(value)}」不是有效日期（如 2025-03-01）")
        elif not MIN_YEAR <= day.year <= MAX_YEAR:
            self._bad(sheet, line, field_, "out_of_range", f"日期须在 {MIN_YEAR}–{MAX_YEAR} 年之间")
        elif day > self.lookups.today:
            self._bad(sheet, line, field_, "in_future", "不能晚于今天")
        else:
            return day
        return None

    def _moment(
        self, sheet: SheetRows, line: int, raw: Mapping[str, Any], field_: str, *, date_only: dt.time
    ) -> dt.datetime | None:
        value = self._required(sheet, line, raw, field_)
        if value is None:
            return None
        parsed = parse_moment(value)
        if parsed is None:
            self._bad(
                sheet, line, field_, "bad_date", f"「{_text(value)}」不是有效时间（如 2025-03-01 14:30）"
            )
            return None
        local, has_time = parsed
        if not has_time:
            local = dt.datetime.combine(local.date(), date_only)
        if not MIN_YEAR <= local.year <= MAX_YEAR:
            self._bad(sheet, line, field_, "out_of_range", f"时间须在 {MIN_YEAR}–{MAX_YEAR} 年之间")
            return None
        moment = (local if local.tzinfo else local.replace(tzinfo=LOCAL_TZ)).astimezone(dt.UTC)
        if moment > self.lookups.now + CLOCK_SLACK and has_time:
            self._bad(sheet, line, field_, "in_future", "不能晚于当前时间")
            return None
        if not has_time and local.date() > self.lookups.today:
            self._bad(sheet, line, field_, "in_future", "不能晚于今天")
            return None
        return moment

    def _tonnes(
        self,
        sheet: SheetRows,
        line: int,
        raw: Mapping[str, Any],
        field_: str,
        *,
        maximum: float,
        positive: bool = False,
    ) -> float | None:
        value = self._required(sheet, line, raw, field_)
        if value is None:
            return None
        number = parse_tonnes(value)
        if number is None:
            self._bad(sheet, line, field_, "bad_number", f"「{_text(value)}」不是数字")
        elif number < 0:
            self._bad(sheet, line, field_, "negative", "不能为负数")
        elif positive and number == 0:
            self._bad(sheet, line, field_, "not_positive", "必须大于 0")
        elif number > maximum:
            self._bad(sheet, line, field_, "out_of_range", f"不能超过 {maximum:g} 吨")
        else:
            return round(number, 3)
        return None

    def _reference(
        self,
        sheet: SheetRows,
        line: int,
        raw: Mapping[str, Any],
        field_: str,
        table: Mapping[str, int],
        code: str,
        what: str,
    ) -> int | None:
        value = self._required(sheet, line, raw, field_)
        if value is None:
            return None
        found = table.get(_text(value).casefold())
        if found is None:
            self._bad(sheet, line, field_, code, f"「{_text(value)}」不是已登记的{what}")
        return found

    def _note(self, sheet: SheetRows, line: int, raw: Mapping[str, Any]) -> str:
        note = _text(raw.get("note")).replace("\x00", "")
        if len(note) > NOTE_MAX:
            self._bad(sheet, line, "note", "too_long", f"不能超过 {NOTE_MAX} 个字")
        return note[:NOTE_MAX]

    # --- sheets ---------------------------------------------------------------------------------

    def _production(self, sheet: SheetRows, line: int, raw: Mapping[str, Any]) -> None:
        day = self._day(sheet, line, raw, "produced_on")
        process_id = None
        name = self._required(sheet, line, raw, "process")
        if name is not None:
            process_id = self.lookups.processes.get(_text(name).casefold())
            if process_id is None:
                known = "、".join(self.lookups.process_names) or "无"
                self._bad(
                    sheet,
                    line,
                    "process",
                    "unknown_process",
                    f"「{_text(name)}」不是本单位登记的工序（已登记：{known}）",
                )
        tonnes = self._tonnes(sheet, line, raw, "aluminium_t", maximum=MAX_ALUMINIUM_T)
        note = self._note(sheet, line, raw)
        if day is None or process_id is None or tonnes is None:
            return
        key = (day, process_id)
        if key in self.production_lines:
            self._bad(
                sheet,
                line,
                "produced_on",
                "duplicate",
                f"与第 {self.production_lines[key]} 行重复（同一天同一工序）",
            )
            return
        self.production_lines[key] = line
        if key in self.lookups.registered_production:
            self._bad(
                sheet, line, "produced_on", "already_registered", "该日该工序的产量已登记；更正请在系统中提交"
            )
            return
        self.parsed.production.append(
            {"process_id": process_id, "produced_on": day, "aluminium_t": tonnes, "note": note}
        )

    def _stock(self, sheet: SheetRows, line: int, raw: Mapping[str, Any]) -> None:
        counted_at = self._moment(sheet, line, raw, "counted_at", date_only=dt.time(23, 59))
        ash = self._tonnes(sheet, line, raw, "ash_t", maximum=MAX_ASH_T)
        note = self._note(sheet, line, raw)
        if counted_at is None or ash is None:
            return
        if counted_at in self.count_lines:
            self._bad(
                sheet,
                line,
                "counted_at",
                "duplicate",
                f"与第 {self.count_lines[counted_at]} 行的盘点时间相同",
            )
            return
        self.count_lines[counted_at] = line
        if counted_at in self.lookups.registered_counts:
            self._bad(
                sheet, line, "counted_at", "already_registered", "该时间的盘点已登记；更正请在系统中提交"
            )
            return
        self.parsed.stock.append({"counted_at": counted_at, "ash_t": ash, "note": note})

    def _manifests(self, sheet: SheetRows, line: int, raw: Mapping[str, Any]) -> None:
        number = None
        value = self._required(sheet, line, raw, "manifest_no")
        if value is not None:
            number = _text(value)
            if not MANIFEST_NO.match(number):
                self._bad(
                    sheet, line, "manifest_no", "invalid", f"「{number}」格式不对（4–32 位字母、数字或 -）"
                )
                number = None
            elif number in self.manifest_lines:
                _, first = self.manifest_lines[number]
                self._bad(sheet, line, "manifest_no", "duplicate", f"「{number}」与第 {first} 行重复")
                number = None
            else:
                self.manifest_lines[number] = (sheet.name, line)
                if number in self.lookups.registered_manifests:
                    self._bad(sheet, line, "manifest_no", "already_registered", f"「{number}」已登记")
                    number = None
        shipped_at = self._moment(sheet, line, raw, "shipped_at", date_only=dt.time())
        tonnes = self._tonnes(sheet, line, raw, "shipped_t", maximum=MAX_SHIPPED_T, positive=True)
        carrier_id = self._reference(
            sheet, line, raw, "carrier", self.lookups.carriers, "unknown_carrier", "运输单位"
        )
        plate = None
        plate_value = self._required(sheet, line, raw, "vehicle_plate")
        if plate_value is not None:
            plate = re.sub(r"[\s·•.\-]", "", _text(plate_value)).upper()
            if not PLATE_LEN[0] <= len(plate) <= PLATE_LEN[1]:
                self._bad(sheet, line, "vehicle_plate", "invalid", f"「{_text(plate_value)}」不是有效车牌号")
                plate = None
        facility_id = self._reference(
            sheet, line, raw, "facility", self.lookups.facilities, "unknown_facility", "处置单位"
        )
        note = self._note(sheet, line, raw)
        if None in (number, shipped_at, tonnes, carrier_id, plate, facility_id):
            return
        self.parsed.manifests.append(
            {
                "manifest_no": number,
                "shipped_at": shipped_at,
                "shipped_t": tonnes,
                "carrier_id": carrier_id,
                "vehicle_plate": plate,
                "facility_id": facility_id,
                "note": note,
            }
        )


def validate(sheets: list[SheetRows], lookups: Lookups) -> tuple[_Parsed, list[LedgerRowError]]:
    """Check every row against ``lookups`` (no database): the parsed rows and the problems."""
    return _Checker(lookups).check(sheets)


# --- the import ---------------------------------------------------------------------------------


async def _unit_for_write(session: AsyncSession, actor: Principal, unit_id: int) -> Unit:
    """The smelter, if the actor's jurisdiction has it (else 404) and its role writes ledgers (403)."""
    unit = None
    if 1 <= unit_id <= 2**31 - 1:
        unit = await session.scalar(select(Unit).where(Unit.id == unit_id, unit_clause(actor.scope)))
    if unit is None:
        raise NotFound("单位不存在或不在您的辖区内")
    if actor.role not in WRITE_ROLES:
        raise Forbidden("您的角色无权录入冶炼企业台账")
    has_process = await session.scalar(
        select(SmelterProcess.id).where(SmelterProcess.unit_id == unit.id).limit(1)
    )
    if has_process is None:
        raise NotFound("该单位不是登记的冶炼企业（没有工艺记录）")
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(
            text("SELECT pg_advisory_xact_lock(:k, :u)"), {"k": _PG_LEDGER_LOCK, "u": unit.id}
        )
    return unit


def _keyed(rows: Sequence[tuple[int, str, str]]) -> dict[str, int]:
    keyed: dict[str, int] = {}
    for row_id, name, licence in rows:
        keyed.setdefault(licence.casefold(), row_id)
        keyed[name.casefold()] = row_id  # a name wins over another's licence number
    return keyed


async def load_lookups(session: AsyncSession, unit_id: int, sheets: list[SheetRows]) -> Lookups:
    processes = (
        await session.execute(
            select(SmelterProcess.id, SmelterProcess.name)
            .where(SmelterProcess.unit_id == unit_id)
            .order_by(SmelterProcess.id)
        )
    ).all()
    carriers = (await session.execute(select(Carrier.id, Carrier.name, Carrier.licence_no))).all()
    facilities = (
        await session.execute(select(DisposalFacility.id, DisposalFacility.name, DisposalFacility.licence_no))
    ).all()

    numbers = {
        _text(raw.get("manifest_no"))
        for sheet in sheets
        if sheet.spec.kind == "manifests"
        for _, raw in sheet.rows
        if not _blank(raw.get("manifest_no"))
    }
    registered: set[str] = set()
    ordered = sorted(numbers)
    for start in range(0, len(ordered), 500):
        registered.update(
            await session.scalars(
                select(Manifest.manifest_no).where(
                    Manifest.unit_id == unit_id,
                    Manifest.manifest_no.in_(ordered[start : start + 500]),
                    effective(Manifest),
                )
            )
        )

    production = (
        await session.execute(
            select(ProductionReport.produced_on, ProductionReport.process_id).where(
                ProductionReport.unit_id == unit_id,
                effective(ProductionReport),
            )
        )
    ).all()
    counts = await session.scalars(
        select(StockCount.counted_at).where(
            StockCount.unit_id == unit_id,
            effective(StockCount),
        )
    )
    now = utcnow()
    return Lookups(
        processes={name.strip().casefold(): pid for pid, name in processes},
        carriers=_keyed([(i, n, lic) for i, n, lic in carriers]),
        facilities=_keyed([(i, n, lic) for i, n, lic in facilities]),
        process_names=tuple(name for _, name in processes),
        registered_manifests=frozenset(registered),
        registered_production=frozenset((day, pid) for day, pid in production),
        registered_counts=frozenset(counts),
        today=now.astimezone(LOCAL_TZ).date(),
        now=now,
    )


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def _insert(session: AsyncSession, model: type[Any], rows: list[dict[str, Any]]) -> None:
    table = table_of(model)
    for start in range(0, len(rows), _CHUNK):
        await session.execute(insert(table), rows[start : start + _CHUNK])


async def import_ledger(
    session: AsyncSession, actor: Principal, unit_id: int, path: Path, *, dry_run: bool = False
) -> LedgerImportResult:
    """Import ``path`` into the ledger of smelter ``unit_id``, all or nothing.

    Raises ``NotFound`` (unit outside the actor's jurisdiction, or not a smelter), ``Forbidden``
    (a role that does not write ledgers) or ``LedgerImportFailed`` (422, every bad row in
    ``details``). With ``dry_run`` everything is checked and counted, nothing written.
    """
    # Read the file before the first query: on SQLite that query takes the write lock.
    sheets, layout_errors = await asyncio.to_thread(read_workbook, path)
    try:
        await _unit_for_write(session, actor, unit_id)
        lookups = await load_lookups(session, unit_id, sheets)
        parsed, errors = validate(sheets, lookups)
        errors = layout_errors + errors
        if errors:
            raise _failed(errors)
        if not (parsed.production or parsed.stock or parsed.manifests):
            raise LedgerImportFailed(
                "工作簿中没有数据行，未写入任何数据。",
                [LedgerRowError(s.name, 0, None, "no_data", "表头下面没有数据行") for s in sheets],
            )
        result = LedgerImportResult(
            unit_id=unit_id,
            production=len(parsed.production),
            stock_counts=len(parsed.stock),
            manifests=len(parsed.manifests),
            dry_run=dry_run,
        )
        if dry_run:
            await session.rollback()
            return result

        now = utcnow()
        common = {
            "unit_id": unit_id,
            "entered_by": actor.user_id or None,
            "created_at": now,
            "supersedes_id": None,
        }
        await _insert(session, ProductionReport, [{**common, **r} for r in parsed.production])
        await _insert(session, StockCount, [{**common, **r} for r in parsed.stock])
        await _insert(session, Manifest, [{**common, **r} for r in parsed.manifests])
        digest = await asyncio.to_thread(_digest, path)
        await audit.record_action(
            session,
            actor,
            "env.ledger.import",
            "env_ledger",
            entity_id=unit_id,
            changes={
                "file": path.name,
                "sha256": digest,
                "production": result.production,
                "stock_counts": result.stock_counts,
                "manifests": result.manifests,
            },
        )
        report = await run_checks(session, now=now, unit_ids=[unit_id])
        await session.commit()
        return LedgerImportResult(
            unit_id=unit_id,
            production=result.production,
            stock_counts=result.stock_counts,
            manifests=result.manifests,
            alerts=dict(report.by_kind),
        )
    except IntegrityError:
        await session.rollback()
        raise Conflict("导入期间台账或登记数据发生了变化，未写入任何数据，请重新导入。") from None
    except BaseException:
        await session.rollback()
        raise
