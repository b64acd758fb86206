"""XLSX (and CSV) import of a unit's HR sheet: every bad row reported, nothing half-imported.

The sheet has one row per hire with the columns 姓名, 身份证号, 手机号, 入职日期, 宿舍地址, 岗位
(English headers ``name, id_number, phone, hired_on, dormitory, position`` are accepted too).
The whole file is validated first — fields, duplicates inside the file, and people still employed
anywhere (a person holds one active employment; hiring someone still active elsewhere is the row
error "仍在其他单位在职", without naming the other unit) — and only a clean file is written, in
one transaction, with set-based lookups of existing persons in chunks.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import openpyxl
from openpyxl.utils.exceptions import InvalidFileException
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from eqian.core import audit
from eqian.core.errors import ValidationFailed
from eqian.core.ids import IdentifierError, mask_resident_id, validate_mobile, validate_resident_id
from eqian.core.permissions import Principal
from eqian.workforce import schemas, service
from eqian.workforce.models import Employment, Person, Residence

CHUNK = 500  # ids per IN (…) lookup: well under SQLite's and asyncpg's parameter limits
MAX_ROWS = 20_000
HEADER_SCAN_ROWS = 5
HEADERS = {
    "name": ("姓名", "name", "员工姓名"),
    "id_number": ("身份证号", "身份证号码", "身份证", "id_number", "id number", "resident id"),
    "phone": ("手机号", "手机号码", "手机", "联系电话", "phone", "mobile"),
    "hired_on": ("入职日期", "入职时间", "hired_on", "hire date", "hired on"),
    "dormitory": ("宿舍地址", "宿舍", "dormitory", "dormitory address"),
    "position": ("岗位", "职位", "position"),
}
REQUIRED = ("name", "id_number", "phone", "hired_on")
FIELD_LABELS = {
    "name": "姓名",
    "id_number": "身份证号",
    "phone": "手机号",
    "hired_on": "入职日期",
    "dormitory": "宿舍地址",
    "position": "岗位",
}
_FIELD_ORDER = {name: i for i, name in enumerate(HEADERS)}
_LOOKUP = {alias.casefold(): key for key, aliases in HEADERS.items() for alias in aliases}
_DATE = re.compile(r"^(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?$")
_EXCEL_EPOCH = dt.date(1899, 12, 30)


@dataclass(frozen=True)
class RowError:
    line: int
    field: str | None
    code: str
    message: str


class ImportFailed(ValidationFailed):
    code = "import_failed"

    def __init__(self, message: str, errors: Sequence[RowError] = ()) -> None:
        ordered = sorted(errors, key=lambda e: (e.line, _FIELD_ORDER.get(e.field or "", -1)))
        super().__init__(message, details=[asdict(e) for e in ordered])
        self.errors: list[RowError] = ordered


# --- reading ------------------------------------------------------------------------------------


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip().replace("\u3000", " ")


def _xlsx_grid(path: Path) -> Iterator[list[object]]:
    try:
        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except (InvalidFileException, zipfile.BadZipFile, OSError, KeyError, ValueError, SyntaxError):
        raise ImportFailed("无法读取 Excel 文件（文件已损坏或不是 .xlsx 格式）") from None
    try:
        ws = wb.active
        if ws is None or not hasattr(ws, "iter_rows"):
            return
        ws.reset_dimensions()
        for values in ws.iter_rows(values_only=True):
            yield list(values)
    finally:
        wb.close()


def _csv_grid(path: Path) -> Iterator[list[object]]:
    data = path.read_bytes()
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise ImportFailed("无法识别 CSV 文件的编码（请使用 UTF-8 或 GBK）")
    yield from csv.reader(io.StringIO(text))


def read_sheet(path: Path) -> list[tuple[int, dict[str, object]]]:
    """Data rows as (spreadsheet line, {field: raw cell}); blank rows are left out."""
    suffix = path.suffix.lower()
    if suffix == ".xlsx":
        grid: Iterable[list[object]] = _xlsx_grid(path)
    elif suffix in (".csv", ".txt"):
        grid = _csv_grid(path)
    else:
        raise ImportFailed(f"不支持的文件类型「{suffix or '无扩展名'}」：请使用 .xlsx 或 .csv 文件。")
    header: dict[int, str] | None = None
    rows: list[tuple[int, dict[str, object]]] = []
    for line, cells in enumerate(grid, start=1):
        if header is None:
            found = {
                i: _LOOKUP[_text(c).casefold()] for i, c in enumerate(cells) if _text(c).casefold() in _LOOKUP
            }
            if set(REQUIRED) <= set(found.values()):
                header = found
                continue
            if line >= HEADER_SCAN_ROWS:
                break
            continue
        if all(_text(c) == "" for c in cells):
            continue
        rows.append((line, {key: cells[i] if i < len(cells) else None for i, key in header.items()}))
        if len(rows) > MAX_ROWS:
            raise ImportFailed(f"文件行数过多：一次最多导入 {MAX_ROWS} 行")
    if header is None:
        missing = "、".join(FIELD_LABELS[k] for k in REQUIRED)
        raise ImportFailed(
            f"未找到表头：前 {HEADER_SCAN_ROWS} 行中应有 {missing} 列",
            [RowError(1, None, "missing_header", f"缺少表头（需要：{missing}）")],
        )
    return rows


def parse_date(value: object) -> dt.date | None:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool) and 20_000 < value < 80_000:
        return _EXCEL_EPOCH + dt.timedelta(days=int(value))  # an Excel serial date
    text = _text(value)
    if len(text) == 8 and text.isdigit():
        text = f"{text[:4]}-{text[4:6]}-{text[6:]}"
    match = _DATE.match(text)
    if not match:
        return None
    try:
        return dt.date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        return None


# --- validating ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class HireRow:
    line: int
    name: str
    id_number: str
    phone: str
    hired_on: dt.date
    dormitory: str
    position: str


def validate_row(line: int, raw: dict[str, object], today: dt.date) -> tuple[HireRow | None, list[RowError]]:
    errors: list[RowError] = []

    def bad(name: str, code: str, message: str) -> None:
        errors.append(RowError(line, name, code, f"{FIELD_LABELS[name]}：{message}"))

    name = _text(raw.get("name"))
    if not name:
        bad("name", "missing", "不能为空")
    elif len(name) > 64:
        bad("name", "too_long", "最多 64 个字符")
    id_number = ""
    try:
        id_number = validate_resident_id(_text(raw.get("id_number")))
    except IdentifierError as exc:
        bad("id_number", exc.reason or "invalid", exc.message if _text(raw.get("id_number")) else "不能为空")
    phone = ""
    try:
        phone = validate_mobile(_text(raw.get("phone")))
    except IdentifierError as exc:
        bad("phone", exc.reason or "invalid", exc.message if _text(raw.get("phone")) else "不能为空")
    hired_on = parse_date(raw.get("hired_on"))
    if hired_on is None:
        bad("hired_on", "invalid", "日期格式应为 2025-03-01")
    elif (problem := service.check_hire_date(hired_on, today)) is not None:
        bad("hired_on", "out_of_range", problem)
    dormitory = _text(raw.get("dormitory"))
    if len(dormitory) > 200:
        bad("dormitory", "too_long", "最多 200 个字符")
    position = _text(raw.get("position"))
    if len(position) > 64:
        bad("position", "too_long", "最多 64 个字符")
    for key, value in (("name", name), ("dormitory", dormitory), ("position", position)):
        if "\x00" in value:
            bad(key, "invalid", "不能包含空字符")
    if errors or hired_on is None:
        return None, errors
    return HireRow(line, name, id_number, phone, hired_on, dormitory, position), []


def _chunks(items: Sequence[Any], size: int = CHUNK) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


async def _existing(session: AsyncSession, id_numbers: Sequence[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for chunk in _chunks(id_numbers):
        rows = await session.execute(select(Person.id_number, Person.id).where(Person.id_number.in_(chunk)))
        found.update(dict(rows.all()))
    return found


async def _active_units(session: AsyncSession, person_ids: Sequence[int]) -> dict[int, int]:
    found: dict[int, int] = {}
    for chunk in _chunks(person_ids):
        rows = await session.execute(
            select(Employment.person_id, Employment.unit_id).where(
                Employment.person_id.in_(chunk), Employment.left_on.is_(None)
            )
        )
        found.update(dict(rows.all()))
    return found


def _failed(errors: list[RowError]) -> ImportFailed:
    lines = len({e.line for e in errors})
    return ImportFailed(f"导入失败：{lines} 行共 {len(errors)} 处错误，未写入任何数据。", errors)


async def import_hires(
    session: AsyncSession, actor: Principal, unit_id: int, path: Path, *, dry_run: bool = False
) -> schemas.ImportReport:
    """Validate the whole sheet, then write every hire in one transaction (or nothing)."""
    unit = await service.load_unit(session, actor, unit_id)
    actor.require_role(*service.WRITE_ROLES)
    raw_rows = read_sheet(path)
    if not raw_rows:
        raise ImportFailed("文件中没有数据行")
    today = service.local_today()
    errors: list[RowError] = []
    good: list[HireRow] = []
    first_line: dict[str, int] = {}
    for line, raw in raw_rows:
        row, errs = validate_row(line, raw, today)
        errors.extend(errs)
        if row is None:
            continue
        if row.id_number in first_line:
            errors.append(
                RowError(line, "id_number", "duplicate", f"身份证号：与第 {first_line[row.id_number]} 行重复")
            )
            continue
        first_line[row.id_number] = line
        good.append(row)
    existing = await _existing(session, [r.id_number for r in good])
    active = await _active_units(session, list(existing.values()))
    for row in good:
        pid = existing.get(row.id_number)
        if pid is not None and pid in active:
            message = "该员工已在本单位在职" if active[pid] == unit.id else service.ACTIVE_ELSEWHERE
            errors.append(RowError(row.line, "id_number", "already_employed", f"身份证号：{message}"))
    if errors:
        raise _failed(errors)
    new_rows = [r for r in good if r.id_number not in existing]
    created_ids = {r.id_number for r in new_rows}
    report = schemas.ImportReport(
        dry_run=dry_run, rows=len(good), created_persons=len(new_rows), hires=len(good)
    )
    if dry_run:
        return report
    if new_rows:
        await session.execute(
            insert(Person),
            [
                {
                    "id_number": r.id_number,
                    "name": r.name,
                    "phone": r.phone,
                    "birth_date": dt.date(
                        int(r.id_number[6:10]), int(r.id_number[10:12]), int(r.id_number[12:14])
                    ),
                    "home_region": r.id_number[:6],
                }
                for r in new_rows
            ],
        )
        created = await _existing(session, [r.id_number for r in new_rows])
        await session.execute(
            insert(Residence), [{"person_id": pid, "status": "unregistered"} for pid in created.values()]
        )
        existing.update(created)
    kept = [r for r in good if r.id_number not in created_ids]
    if kept:  # a returning worker: the sheet's name and phone are the current ones
        await session.execute(
            update(Person), [{"id": existing[r.id_number], "name": r.name, "phone": r.phone} for r in kept]
        )
    await session.execute(
        insert(Employment),
        [
            {
                "person_id": existing[r.id_number],
                "unit_id": unit.id,
                "hired_on": r.hired_on,
                "dormitory": r.dormitory,
                "position": r.position,
            }
            for r in good
        ],
    )
    await audit.record_action(
        session,
        actor,
        "worker.import",
        "unit",
        entity_id=unit.id,
        changes={
            "rows": len(good),
            "created_persons": len(new_rows),
            "file": path.name[:100],
            "sample": [mask_resident_id(r.id_number) for r in good[:3]],
        },
    )
    await session.commit()
    return report
