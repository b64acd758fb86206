"""Bulk import and export of units as CSV or XLSX, for the station clerk with a spreadsheet.

Import is all-or-nothing: every row is checked, every problem is reported with the line number
the clerk sees in Excel, and a single bad row means nothing is written. Rows are matched to
existing units by credit code, so re-importing an edited export updates in place.

Blank cells mean "no value given": a new unit gets the default, an existing unit keeps what it
has. Sheets from other sources (a market-regulator list, a community survey) are often sparse,
and a blank cell must not wipe what the station has already recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import math
import os
import re
import tempfile
import zipfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import openpyxl
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Font
from openpyxl.utils.exceptions import InvalidFileException
from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from eqian.core import audit
from eqian.core.db import refresh_statistics, utcnow
from eqian.core.errors import AppError, Conflict, ValidationFailed
from eqian.core.ids import IdentifierError, validate_credit_code
from eqian.core.permissions import Principal, ScopeKind
from eqian.organizations.categories import STATUS_LABELS_ZH, UNIT_STATUSES
from eqian.organizations.models import ServicePoint, Station, Unit, UnitCategory
from eqian.organizations.service import WRITE_ROLES, refresh_unit_zones, unit_clause

COLUMNS: list[tuple[str, str]] = [
    ("name", "单位名称"),
    ("credit_code", "统一社会信用代码"),
    ("category", "单位类别"),
    ("station", "所属派出所"),
    ("service_point", "自治服务点"),
    ("address", "地址"),
    ("lat", "纬度"),
    ("lng", "经度"),
    ("employee_count", "员工人数"),
    ("above_scale", "规上企业"),
    ("status", "状态"),
]
REQUIRED_FIELDS: tuple[str, ...] = ("name", "credit_code", "category", "station")

LABELS: dict[str, str] = dict(COLUMNS)
_FIELD_ORDER = {name: i for i, (name, _) in enumerate(COLUMNS)}

NAME_MIN, NAME_MAX = 2, 100
ADDRESS_MAX = 200
EMPLOYEES_MAX = 1_000_000  # the same ceiling the API's UnitCreate enforces
CREDIT_CODE_CHUNK = 500  # stays well under SQLite's and asyncpg's bound-parameter limits
EXPORT_CHUNK = 2000

_CSV_SUFFIXES = frozenset({".csv"})
_XLSX_SUFFIXES = frozenset({".xlsx", ".xlsm"})
_LEGACY_EXCEL_SUFFIXES = frozenset({".xls", ".et"})
# Title rows ("织里镇重点单位信息表") above the header are common in government templates.
_HEADER_SCAN_ROWS = 10


# --- results and errors -------------------------------------------------------------------------


@dataclass(frozen=True)
class RowError:
    line: int
    field: str | None
    code: str
    message: str


@dataclass(frozen=True)
class ImportResult:
    created: int
    updated: int
    errors: list[RowError] = field(default_factory=list)
    unchanged: int = 0


class ImportFailed(AppError):
    status_code = 422
    code = "import_failed"

    def __init__(self, message: str, errors: Sequence[RowError] = ()) -> None:
        super().__init__(message, details=[asdict(e) for e in errors])
        self.errors: list[RowError] = list(errors)


def _failed(errors: list[RowError]) -> ImportFailed:
    lines = len({e.line for e in errors})
    return ImportFailed(f"导入失败：{lines} 行共 {len(errors)} 处错误，未写入任何数据。", _sorted(errors))


def _sorted(errors: Iterable[RowError]) -> list[RowError]:
    return sorted(errors, key=lambda e: (e.line, _FIELD_ORDER.get(e.field or "", -1)))


# --- reading files ------------------------------------------------------------------------------

_ZERO_WIDTH = "\ufeff\u200b\u200c\u200d\u2060"
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# A CSV export defuses cells Excel would run as formulas with a leading apostrophe (see _csv_guard);
# import takes exactly one off so the round trip is exact.
_GUARDED = re.compile(r"^'+[=+\-@]")
_NEEDS_CSV_GUARD = re.compile(r"^'*[=+\-@]")


def _cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        # Excel stores every number as a double: 120 arrives as 120.0. Above 1e15 digits are
        # already lost, so keep the scientific form and let the credit-code check explain it.
        if math.isfinite(value) and value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return repr(value)
    text = value.isoformat() if hasattr(value, "isoformat") else str(value)
    text = _CONTROL.sub("", text.strip().strip(_ZERO_WIDTH).strip())
    if _GUARDED.match(text):
        text = text[1:]
    return text


def _norm_header(value: str) -> str:
    # Templates mark required columns with * and people pad headers with spaces of every width.
    return re.sub(r"\s+", "", value).strip("*＊").casefold()


_HEADER_FIELDS: dict[str, str] = {
    **{_norm_header(zh): name for name, zh in COLUMNS},
    **{_norm_header(name): name for name, _ in COLUMNS},
}


def _column_letter(index: int) -> str:
    letters = ""
    n = index + 1
    while n:
        n, rem = divmod(n - 1, 26)
        letters = chr(65 + rem) + letters
    return letters


def _header_map(cells: Sequence[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for i, cell in enumerate(cells):
        name = _HEADER_FIELDS.get(_norm_header(cell))
        if name is not None and name not in found:
            found[name] = i
    return found


def _is_header(cells: Sequence[str]) -> bool:
    return all(f in _header_map(cells) for f in REQUIRED_FIELDS)


def _rows_from_grid(grid: Iterable[tuple[int, list[str]]]) -> list[tuple[int, dict[str, str]]]:
    lines = [(line, cells) for line, cells in grid if any(cells)]
    if not lines:
        raise ImportFailed(
            "文件是空的：没有表头，也没有数据行。",
            [RowError(1, None, "empty_file", "文件是空的")],
        )
    header_at = next((i for i, (_, cells) in enumerate(lines[:_HEADER_SCAN_ROWS]) if _is_header(cells)), 0)
    header_line, header = lines[header_at]

    errors: list[RowError] = []
    columns: dict[str, int] = {}
    for i, cell in enumerate(header):
        name = _HEADER_FIELDS.get(_norm_header(cell))
        if name is None:
            continue  # 序号, 备注 and other working columns are the clerk's business
        if name in columns:
            errors.append(
                RowError(
                    header_line,
                    name,
                    "duplicate_column",
                    f"「{LABELS[name]}」列出现了两次"
                    f"（第 {_column_letter(columns[name])} 列和第 {_column_letter(i)} 列）",
                )
            )
            continue
        columns[name] = i
    for name in REQUIRED_FIELDS:
        if name not in columns:
            errors.append(
                RowError(
                    header_line,
                    name,
                    "missing_column",
                    f"缺少必填列「{LABELS[name]}」（表头也可写英文字段名 {name}）",
                )
            )
    if errors:
        raise ImportFailed("表头不正确，未导入任何数据。", errors)

    rows: list[tuple[int, dict[str, str]]] = []
    for line, cells in lines[header_at + 1 :]:
        values = {name: cells[i] if i < len(cells) else "" for name, i in columns.items()}
        if any(values.values()):
            rows.append((line, values))
    if not rows:
        raise ImportFailed(
            "文件中没有数据行。", [RowError(header_line, None, "no_data", "表头下面没有可导入的数据行")]
        )
    return rows


def _decode_csv(data: bytes) -> tuple[str, str]:
    """The text and its delimiter. Excel's "Unicode text" is tab-separated UTF-16."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        text = data.decode("utf-16")
        first = text.split("\n", 1)[0]
        return text, "\t" if "\t" in first else ","
    try:
        return data.decode("utf-8-sig"), ","
    except UnicodeDecodeError:
        pass
    try:
        # What a Chinese-locale Excel writes for "CSV (逗号分隔)"; a superset of GBK and GB2312.
        return data.decode("gb18030"), ","
    except UnicodeDecodeError:
        raise ImportFailed(
            "无法识别 CSV 文件的编码：请在 Excel 中另存为「CSV UTF-8（逗号分隔）」后再导入。"
        ) from None


def _csv_grid(path: Path) -> list[tuple[int, list[str]]]:
    text, delimiter = _decode_csv(path.read_bytes())
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    grid: list[tuple[int, list[str]]] = []
    line = 0
    try:
        # A spreadsheet row is a CSV record, not a physical line: quoted cells may hold newlines.
        for line, record in enumerate(reader, start=1):
            grid.append((line, [_cell_text(c) for c in record]))
    except csv.Error as exc:
        bad = RowError(line + 1, None, "bad_csv", f"CSV 格式错误：{exc}")
        raise ImportFailed(f"CSV 文件第 {line + 1} 行格式错误：{exc}", [bad]) from None
    return grid


def _sheet_grid(ws: Any) -> Iterator[tuple[int, list[str]]]:
    # Read-only mode trusts the sheet's recorded dimensions, which some writers get wrong
    # (A1:A1); resetting makes openpyxl read what is actually there.
    ws.reset_dimensions()
    # openpyxl pads rows the file omits, so counting from 1 gives Excel's own row numbers.
    for line, values in enumerate(ws.iter_rows(values_only=True), start=1):
        yield line, [_cell_text(v) for v in values]


# What openpyxl raises for a file that is not a workbook or has broken parts (XML ParseError is
# a SyntaxError).
_BROKEN_XLSX = (InvalidFileException, zipfile.BadZipFile, OSError, KeyError, ValueError, SyntaxError)


def _xlsx_grid(path: Path) -> list[tuple[int, list[str]]]:
    try:
        return _read_workbook(path)
    except _BROKEN_XLSX as exc:
        raise ImportFailed(f"无法读取 Excel 文件（文件已损坏或不是 .xlsx 格式）：{exc}") from None


def _read_workbook(path: Path) -> list[tuple[int, list[str]]]:
    wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    try:
        active = wb.active
        others = [ws for ws in wb.worksheets if ws is not active]
        sheets = [ws for ws in (active, *others) if hasattr(ws, "iter_rows")]
        # The data is usually on the active sheet, but a workbook saved while the clerk was
        # looking at the 填写说明 sheet should still import.
        for ws in sheets:
            head = [cells for _, cells in _take(_sheet_grid(ws), _HEADER_SCAN_ROWS * 3)]
            if any(_is_header(cells) for cells in head):
                return list(_sheet_grid(ws))
        return list(_sheet_grid(sheets[0])) if sheets else []
    finally:
        wb.close()


def _take(it: Iterator[tuple[int, list[str]]], n: int) -> list[tuple[int, list[str]]]:
    out: list[tuple[int, list[str]]] = []
    for item in it:
        out.append(item)
        if len(out) >= n:
            break
    return out


def read_rows(path: Path) -> list[tuple[int, dict[str, str]]]:
    """Data rows as (spreadsheet line, {field: cell text}); blank rows are left out.

    Only the recognised columns that the file has appear in each dict. Header problems and
    unreadable files raise ``ImportFailed``.
    """
    suffix = path.suffix.lower()
    if suffix in _CSV_SUFFIXES:
        grid = _csv_grid(path)
    elif suffix in _XLSX_SUFFIXES:
        grid = _xlsx_grid(path)
    elif suffix in _LEGACY_EXCEL_SUFFIXES:
        raise ImportFailed(f"不支持旧版 Excel 格式（{suffix}）：请在 Excel 中另存为 .xlsx 或 CSV 后再导入。")
    else:
        raise ImportFailed(f"不支持的文件类型「{suffix or '无扩展名'}」：请使用 .csv 或 .xlsx 文件。")
    return _rows_from_grid(grid)


# --- validating rows (no database) --------------------------------------------------------------


@dataclass(frozen=True)
class Lookups:
    """Reference data a row is checked against, loaded once per import."""

    categories: Mapping[str, str]  # code, Chinese or English name (casefolded) -> code
    stations: Mapping[str, int]  # code or name (casefolded) -> station id
    service_points: Mapping[str, tuple[int, int]]  # name (casefolded) -> (id, station id)
    allowed_station_ids: frozenset[int] | None = None  # None: every station

    @classmethod
    def build(
        cls,
        *,
        categories: Iterable[tuple[str, str, str]],
        stations: Iterable[tuple[int, str, str]],
        service_points: Iterable[tuple[int, int, str]],
        allowed_station_ids: frozenset[int] | None = None,
    ) -> Lookups:
        """From (code, name_zh, name_en), (id, code, name) and (id, station_id, name) tuples."""
        cats: dict[str, str] = {}
        for code, name_zh, name_en in categories:
            for key in (name_en, name_zh, code):  # the code wins any clash with a display name
                cats[key.casefold()] = code
        station_list = list(stations)
        sts = {name.casefold(): sid for sid, _, name in station_list}
        sts.update({code.casefold(): sid for sid, code, _ in station_list})  # again the code wins
        return cls(
            categories=cats,
            stations=sts,
            service_points={name.casefold(): (spid, sid) for spid, sid, name in service_points},
            allowed_station_ids=allowed_station_ids,
        )

    def station_allowed(self, station_id: int) -> bool:
        return self.allowed_station_ids is None or station_id in self.allowed_station_ids


_TRUE = frozenset({"是", "true", "1", "y", "yes", "t"})
_FALSE = frozenset({"否", "false", "0", "n", "no", "f"})
_STATUS_BY_TEXT: dict[str, str] = {
    **{s: s for s in UNIT_STATUSES},
    **{label: s for s, label in STATUS_LABELS_ZH.items()},
}
_THOUSANDS = re.compile(r"^\d{1,3}(,\d{3})+$")
_WHOLE = re.compile(r"^\+?\d+(\.0*)?$")
_SCIENTIFIC = re.compile(r"^\d(\.\d+)?e\+?\d+$", re.IGNORECASE)


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _validate(line: int, raw: Mapping[str, str], lookups: Lookups) -> tuple[dict[str, Any], list[RowError]]:
    """Whatever parsed, and the problems; callers see the parsed part only when there are none."""
    out: dict[str, Any] = {}
    errors: list[RowError] = []

    def bad(name: str, code: str, message: str) -> None:
        errors.append(RowError(line, name, code, message))

    def get(name: str) -> str:
        return raw.get(name, "").strip()

    name = get("name")
    if not name:
        bad("name", "required", "单位名称不能为空")
    elif not NAME_MIN <= len(name) <= NAME_MAX:
        bad("name", "invalid_length", f"单位名称应为 {NAME_MIN}–{NAME_MAX} 个字符（现为 {len(name)} 个）")
    else:
        out["name"] = name

    code_text = get("credit_code")
    if not code_text:
        bad("credit_code", "required", "统一社会信用代码不能为空")
    else:
        try:
            out["credit_code"] = validate_credit_code(code_text)
        except IdentifierError as exc:
            hint = ""
            if _SCIENTIFIC.match(code_text):
                hint = "（该单元格被 Excel 当成了数字，请把此列设为「文本」格式后重新填写）"
            bad("credit_code", exc.code, f"{exc.message}：{code_text}{hint}")

    category = get("category")
    if not category:
        bad("category", "required", "单位类别不能为空")
    elif (cat_code := lookups.categories.get(category.casefold())) is None:
        bad(
            "category",
            "unknown_category",
            f"单位类别「{category}」无法识别：请填写类别名称（如 童装企业）或代码（如 garment）",
        )
    else:
        out["category_code"] = cat_code

    station = get("station")
    station_id: int | None = None
    if not station:
        bad("station", "required", "所属派出所不能为空")
    else:
        sid = lookups.stations.get(station.casefold())
        # One message for "no such station" and "not yours", as everywhere else in the service.
        if sid is None or not lookups.station_allowed(sid):
            bad("station", "unknown_station", f"所属派出所「{station}」不存在或不在您的辖区内")
        else:
            station_id = out["station_id"] = sid

    service_point = get("service_point")
    if service_point:
        sp = lookups.service_points.get(service_point.casefold())
        if sp is None:
            bad("service_point", "unknown_service_point", f"自治服务点「{service_point}」不存在")
        elif station_id is not None and sp[1] != station_id:
            bad(
                "service_point",
                "service_point_mismatch",
                f"自治服务点「{service_point}」不属于派出所「{station}」",
            )
        else:
            out["service_point_id"] = sp[0]

    address = get("address")
    if len(address) > ADDRESS_MAX:
        bad("address", "too_long", f"地址不能超过 {ADDRESS_MAX} 个字符（现为 {len(address)} 个）")
    elif address:
        out["address"] = address

    coords: dict[str, float] = {}
    for key, limit in (("lat", 90.0), ("lng", 180.0)):
        text = get(key)
        if not text:
            continue
        value = _number(text)
        if value is None:
            bad(key, "invalid_number", f"{LABELS[key]}「{text}」不是有效的数字（应为十进制度数，如 30.8712）")
        elif not -limit <= value <= limit:
            coords[key] = value
            bad(key, "out_of_range", f"{LABELS[key]} {text} 超出范围（-{limit:g}～{limit:g}）")
        else:
            coords[key] = out[key] = value
    lat, lng = coords.get("lat"), coords.get("lng")
    if lat is not None and lng is not None and 90 < abs(lat) <= 180 and abs(lng) <= 90:
        # Zhili is at about 30.8°N 120.2°E: a lat of 120 is the classic swapped-columns slip.
        errors[:] = [e for e in errors if e.field not in ("lat", "lng")]
        bad("lat", "swapped_coordinates", f"纬度 {lat:g} 和经度 {lng:g} 似乎填反了（纬度在 -90～90 之间）")
        out.pop("lat", None)
        out.pop("lng", None)

    employees = get("employee_count")
    if employees:
        digits = employees.replace(",", "") if _THOUSANDS.match(employees) else employees
        if employees.startswith("-") and _WHOLE.match(employees[1:]):
            bad("employee_count", "out_of_range", f"员工人数不能为负数（{employees}）")
        elif not _WHOLE.match(digits):
            bad("employee_count", "invalid_integer", f"员工人数「{employees}」应为整数")
        elif (count := int(float(digits))) > EMPLOYEES_MAX:
            bad("employee_count", "out_of_range", f"员工人数 {count} 超出上限 {EMPLOYEES_MAX}")
        else:
            out["employee_count"] = count

    above = get("above_scale")
    if above:
        flag = above.casefold()
        if flag in _TRUE:
            out["above_scale"] = True
        elif flag in _FALSE:
            out["above_scale"] = False
        else:
            bad("above_scale", "invalid_boolean", f"规上企业「{above}」无法识别：请填写 是 或 否")

    status = get("status")
    if status:
        status_code = _STATUS_BY_TEXT.get(status.casefold())
        if status_code is None:
            choices = "、".join(STATUS_LABELS_ZH.values())
            bad("status", "invalid_status", f"状态「{status}」无法识别：请填写 {choices}")
        else:
            out["status"] = status_code

    return out, errors


def validate_row(
    line: int, raw: Mapping[str, str], lookups: Lookups
) -> tuple[dict[str, Any] | None, list[RowError]]:
    """One row's values keyed by ``Unit`` attribute, or None and every problem with it.

    Only non-blank cells appear in the values (see the module docstring for why).
    """
    values, errors = _validate(line, raw, lookups)
    return (None, errors) if errors else (values, [])


def validate_rows(
    rows: Iterable[tuple[int, Mapping[str, str]]], lookups: Lookups
) -> tuple[list[tuple[int, dict[str, Any]]], list[RowError]]:
    """Every row through ``validate_row``, plus credit codes repeated within the file."""
    valid: list[tuple[int, dict[str, Any]]] = []
    errors: list[RowError] = []
    first_seen: dict[str, int] = {}
    for line, raw in rows:
        values, row_errors = _validate(line, raw, lookups)
        code = values.get("credit_code")
        if code is not None:
            if code in first_seen:
                row_errors.append(
                    RowError(
                        line,
                        "credit_code",
                        "duplicate_in_file",
                        f"统一社会信用代码 {code} 与第 {first_seen[code]} 行重复",
                    )
                )
            else:
                first_seen[code] = line
        if row_errors:
            errors.extend(row_errors)
        else:
            valid.append((line, values))
    return valid, errors


# --- planning writes (no database) --------------------------------------------------------------

UNIT_DEFAULTS: dict[str, Any] = {
    "service_point_id": None,
    "address": "",
    "lat": None,
    "lng": None,
    "employee_count": 0,
    "above_scale": False,
    "status": "active",
}
# What an update compares: everything a row can carry except the key itself.
_COMPARED = (
    "name",
    "category_code",
    "station_id",
    "service_point_id",
    "address",
    "lat",
    "lng",
    "employee_count",
    "above_scale",
    "status",
)


def _same(new: Any, old: Any) -> bool:
    # Spreadsheets keep 15-16 significant digits: a coordinate that comes back a few units in the
    # 16th digit off is the same place, not a change to write and audit.
    if isinstance(new, float) and isinstance(old, float):
        return math.isclose(new, old, rel_tol=1e-12, abs_tol=1e-9)
    return bool(new == old)


@dataclass(frozen=True)
class ImportPlan:
    creates: list[dict[str, Any]]
    updates: list[dict[str, Any]]  # each {"id": ..., changed attributes...}
    unchanged: int
    errors: list[RowError]


def plan_import(
    valid: Iterable[tuple[int, Mapping[str, Any]]],
    existing: Mapping[str, Mapping[str, Any]],
    lookups: Lookups,
) -> ImportPlan:
    """Split validated rows into inserts and real changes; ``existing`` is keyed by credit code."""
    creates: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    errors: list[RowError] = []
    unchanged = 0
    for line, values in valid:
        current = existing.get(values["credit_code"])
        if current is None:
            creates.append({**UNIT_DEFAULTS, **values})
            continue
        if not lookups.station_allowed(current["station_id"]):
            # Saying where, or whose, would leak another jurisdiction's register.
            errors.append(
                RowError(
                    line,
                    "credit_code",
                    "registered_elsewhere",
                    "该统一社会信用代码已登记在其他辖区的单位，无法由您导入或修改；如有疑问请联系分局",
                )
            )
            continue
        target = dict(values)
        if target["station_id"] != current["station_id"] and "service_point_id" not in target:
            target["service_point_id"] = None  # a unit that moves station leaves its old service point
        changed = {k: target[k] for k in _COMPARED if k in target and not _same(target[k], current[k])}
        if changed:
            updates.append({"id": current["id"], **changed})
        else:
            unchanged += 1
    return ImportPlan(creates, updates, unchanged, errors)


# --- import -------------------------------------------------------------------------------------


def _allowed_stations(actor: Principal) -> frozenset[int] | None:
    if actor.scope.kind is ScopeKind.ALL:
        return None
    if actor.scope.kind is ScopeKind.STATIONS:
        return actor.scope.station_ids
    return frozenset()


async def load_lookups(session: AsyncSession, actor: Principal) -> Lookups:
    cats = (
        await session.execute(select(UnitCategory.code, UnitCategory.name_zh, UnitCategory.name_en))
    ).all()
    stations = (await session.execute(select(Station.id, Station.code, Station.name))).all()
    sps = (await session.execute(select(ServicePoint.id, ServicePoint.station_id, ServicePoint.name))).all()
    return Lookups.build(
        categories=[(c, zh, en) for c, zh, en in cats],
        stations=[(i, c, n) for i, c, n in stations],
        service_points=[(i, s, n) for i, s, n in sps],
        allowed_station_ids=_allowed_stations(actor),
    )


_EXISTING_COLUMNS = (Unit.id, Unit.credit_code, *(getattr(Unit, k) for k in _COMPARED))


async def _existing_units(session: AsyncSession, codes: Sequence[str]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(codes), CREDIT_CODE_CHUNK):
        chunk = codes[start : start + CREDIT_CODE_CHUNK]
        rows = await session.execute(select(*_EXISTING_COLUMNS).where(Unit.credit_code.in_(chunk)))
        for row in rows.mappings():
            found[row["credit_code"]] = dict(row)
    return found


async def import_units(
    session: AsyncSession, actor: Principal, path: Path, *, dry_run: bool = False
) -> ImportResult:
    """Create or update units from a CSV/XLSX file in one transaction, or raise ``ImportFailed``.

    With ``dry_run`` everything is checked the same way and the counts are what a real import
    would do; nothing is written. Errors raise in both modes.
    """
    actor.require_role(*WRITE_ROLES)
    # Parse before touching the database: on SQLite the first query takes the write lock.
    rows = await asyncio.to_thread(read_rows, path)
    try:
        lookups = await load_lookups(session, actor)
        valid, errors = validate_rows(rows, lookups)
        existing = await _existing_units(session, [v["credit_code"] for _, v in valid])
        plan = plan_import(valid, existing, lookups)
        errors.extend(plan.errors)
        if errors:
            raise _failed(errors)
        result = ImportResult(len(plan.creates), len(plan.updates), [], plan.unchanged)
        if dry_run:
            await session.rollback()
            return result
        now = utcnow()
        if plan.creates:
            # The ORM leaves None values out of an INSERT, and every change in the set of columns
            # starts a new statement: without render_nulls, 20,000 rows became 10,000 round trips.
            await session.execute(
                insert(Unit).execution_options(render_nulls=True),
                [{**c, "created_at": now, "updated_at": now} for c in plan.creates],
            )
        if plan.updates:
            # Likewise one executemany per distinct set of changed columns, so keep them together.
            batch = sorted(plan.updates, key=lambda u: sorted(u))
            await session.execute(update(Unit), [{**u, "updated_at": now} for u in batch])
        if plan.creates or plan.updates:
            # Joint-zone membership follows the coordinates, which an import may have changed.
            await refresh_unit_zones(session, [v["credit_code"] for _, v in valid])
        await audit.record_action(
            session,
            actor,
            "unit.import",
            "unit",
            changes={"file": path.name, "created": result.created, "updated": result.updated},
        )
        await session.commit()
        await refresh_statistics(session, [Unit.__tablename__], rows=result.created + result.updated)
        return result
    except IntegrityError:
        await session.rollback()
        # Someone registered one of these credit codes (or removed a station) while we worked.
        raise Conflict("导入期间单位数据发生了变化，未写入任何数据，请重新导入。") from None
    except BaseException:
        await session.rollback()
        raise


# --- export -------------------------------------------------------------------------------------


class _Sink(Protocol):
    def write(self, rows: Sequence[Sequence[Any]]) -> None: ...
    def close(self) -> None: ...


def _csv_guard(text: str) -> str:
    # Excel runs =, +, -, @ cells as formulas (CSV injection); the apostrophe makes them text.
    return "'" + text if _NEEDS_CSV_GUARD.match(text) else text


def _csv_value(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, str):
        return _csv_guard(value)
    if isinstance(value, float):
        return repr(value)  # the shortest text that reads back as the very same float
    return value


class _CsvSink:
    def __init__(self, path: Path) -> None:
        # The BOM is what makes Excel open UTF-8 instead of guessing the ANSI code page.
        self._file = path.open("w", encoding="utf-8-sig", newline="")
        self._writer = csv.writer(self._file)
        self._writer.writerow([zh for _, zh in COLUMNS])

    def write(self, rows: Sequence[Sequence[Any]]) -> None:
        self._writer.writerows([_csv_value(v) for v in row] for row in rows)

    def close(self) -> None:
        self._file.close()


_XLSX_WIDTHS = (36, 22, 12, 14, 16, 40, 11, 11, 10, 9, 9)


class _XlsxSink:
    def __init__(self, path: Path) -> None:
        self._path = path
        self._wb = openpyxl.Workbook(write_only=True)
        self._ws = self._wb.create_sheet("单位")
        for i, width in enumerate(_XLSX_WIDTHS):
            self._ws.column_dimensions[_column_letter(i)].width = width
        self._ws.freeze_panes = "A2"
        bold = Font(bold=True)
        header = []
        for _, zh in COLUMNS:
            cell = WriteOnlyCell(self._ws, value=zh)
            cell.font = bold
            header.append(cell)
        self._ws.append(header)
        self._credit_col = _FIELD_ORDER["credit_code"]

    def _text(self, value: str, col: int) -> Any:
        value = ILLEGAL_CHARACTERS_RE.sub("", value)  # openpyxl refuses control characters
        if _GUARDED.match(value):
            value = "'" + value  # keeps the import's apostrophe strip exact for these rare names
        if col == self._credit_col or value.startswith("="):
            # Text format keeps an all-digit code from turning into 9.13E+17 when edited, and
            # a leading = would otherwise be written as a formula.
            cell = WriteOnlyCell(self._ws, value=value)
            cell.data_type = "s"
            cell.number_format = "@"
            return cell
        return value

    def write(self, rows: Sequence[Sequence[Any]]) -> None:
        for row in rows:
            self._ws.append([self._text(v, i) if isinstance(v, str) else v for i, v in enumerate(row)])

    def close(self) -> None:
        self._wb.save(self._path)


def _export_query(actor: Principal) -> Any:
    sp = aliased(ServicePoint)
    return (
        select(
            Unit.name,
            Unit.credit_code,
            UnitCategory.name_zh,
            Station.name,
            sp.name,
            Unit.address,
            Unit.lat,
            Unit.lng,
            Unit.employee_count,
            Unit.above_scale,
            Unit.status,
        )
        .join(UnitCategory, UnitCategory.code == Unit.category_code)
        .join(Station, Station.id == Unit.station_id)
        .outerjoin(sp, sp.id == Unit.service_point_id)
        .where(unit_clause(actor.scope))
        .order_by(Unit.id)
    )


def _export_row(row: Sequence[Any]) -> list[Any]:
    name, credit_code, category, station, sp_name, address, lat, lng, employees, above, status = row
    return [
        name,
        credit_code,
        category,
        station,
        sp_name or "",
        address or "",
        lat,
        lng,
        employees,
        "是" if above else "否",
        STATUS_LABELS_ZH.get(status, status),
    ]


async def export_units(session: AsyncSession, actor: Principal, path: Path) -> int:
    """Write the units in the actor's scope to CSV or XLSX (by suffix); returns the rows written.

    The file is written beside the target and renamed into place, so a failed export never
    leaves a half-written file where a good one was.
    """
    suffix = path.suffix.lower()
    if suffix not in _CSV_SUFFIXES | {".xlsx"}:
        raise ValidationFailed(
            f"不支持的导出文件类型「{suffix or '无扩展名'}」：请使用 .csv 或 .xlsx。",
            code="unsupported_file_type",
        )
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    written = 0
    try:
        sink: _Sink = _CsvSink(tmp) if suffix in _CSV_SUFFIXES else _XlsxSink(tmp)
        try:
            result = await session.stream(_export_query(actor).execution_options(yield_per=EXPORT_CHUNK))
            try:
                async for chunk in result.partitions(EXPORT_CHUNK):
                    sink.write([_export_row(r) for r in chunk])
                    written += len(chunk)
            finally:
                await result.close()
        finally:
            await asyncio.to_thread(sink.close)
        await asyncio.to_thread(tmp.replace, path)
    except BaseException:
        _discard(tmp)
        raise
    return written


def _discard(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()
