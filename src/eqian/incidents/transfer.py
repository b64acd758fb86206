"""Import of a 110 dispatch export (CSV or XLSX): classified, linked and routed in one pass.

All or nothing: every row is checked first and every problem is reported with the spreadsheet's
line number and the field; one bad row means nothing is written. Idempotent: a row whose 110
incident number (or, without one, whose time + phone + text) is already stored is skipped, so
importing the same export twice creates nothing the second time. Rows are written with bulk
inserts (incidents, their first timeline entry, the ``incidents.reported`` events) and one audit
row for the whole import.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import multiprocessing as mp
import os
import re
import zipfile
from collections import Counter
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import openpyxl
from openpyxl.utils.exceptions import InvalidFileException
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from eqian.core import audit
from eqian.core.db import refresh_statistics, table_of, utcnow
from eqian.core.errors import ValidationFailed
from eqian.core.outbox import OutboxEvent
from eqian.core.permissions import Principal
from eqian.incidents import classifier, linking, routing
from eqian.incidents.models import Incident, IncidentEvent
from eqian.incidents.service import (
    INTAKE_ROLES,
    REPORTED_TOPIC,
    _require,
    prepare,
    reported_payload,
    source_key,
    stations_of,
)
from eqian.organizations.models import Station
from eqian.organizations.transfer import ImportFailed, RowError

__all__ = ["ImportFailed", "ImportResult", "RowError", "import_file", "import_rows", "read_rows"]

LOCAL_TZ = ZoneInfo("Asia/Shanghai")
CHUNK = 2000  # rows per INSERT statement batch
KEY_CHUNK = 500  # keys per IN (...) lookup
MAX_ROWS = 1_000_000
PARALLEL_MIN = 2000  # distinct texts from which classification is spread over processes

# field -> accepted headers (Chinese as the 110 system exports them, or the field name)
HEADERS: dict[str, tuple[str, ...]] = {
    "number": ("接警编号", "警情编号", "接警单编号", "编号", "number"),
    "reported_at": ("报警时间", "接警时间", "时间", "reported_at", "time"),
    "caller_phone": ("报警电话", "报警人电话", "联系电话", "caller_phone", "phone"),
    "address": ("事发地址", "发案地址", "地址", "address"),
    "description": ("报警内容", "简要警情", "警情内容", "简要案情", "description", "text"),
    "category": ("警情类别", "类别", "category"),
    "unit_ref": ("单位", "单位编号", "统一社会信用代码", "unit_ref", "unit"),
    "station": ("管辖派出所", "派出所", "station"),
    "lat": ("纬度", "lat"),
    "lng": ("经度", "lng"),
    "fraud_loss_yuan": ("损失金额", "被骗金额", "fraud_loss_yuan"),
}
LABELS = {name: names[0] for name, names in HEADERS.items()}
REQUIRED = ("reported_at", "description")
_HEADER_OF = {re.sub(r"\s+", "", h).strip("*＊").casefold(): f for f, hs in HEADERS.items() for h in hs}
_PHONE = re.compile(r"^\+?[0-9][0-9\- ]{3,19}$")
_TIME_FORMATS = (
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d %H:%M",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%dT%H:%M",
    "%Y%m%d%H%M%S",
    "%Y年%m月%d日 %H:%M",
    "%Y年%m月%d日%H时%M分",
)
_CATEGORY_OF = {
    **{code: code for code in classifier.CATEGORIES},
    **{label: code for code, label in classifier.CATEGORIES.items()},
}


@dataclass
class ImportResult:
    rows: int = 0
    created: int = 0
    skipped: int = 0
    linked: int = 0
    by_route: Counter[str] = field(default_factory=Counter)
    by_category: Counter[str] = field(default_factory=Counter)


# --- reading -------------------------------------------------------------------------------------


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return str(value).strip().strip("\ufeff\u200b")


def _csv_grid(path: Path) -> Iterable[tuple[int, list[str]]]:
    data = path.read_bytes()
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise ImportFailed("无法识别 CSV 文件的编码：请另存为 UTF-8 CSV 后再导入。")
    reader = csv.reader(io.StringIO(text, newline=""))
    line = 0
    try:
        for line, record in enumerate(reader, start=1):
            yield line, [c.strip() for c in record]
    except csv.Error as exc:
        raise ImportFailed(
            f"CSV 文件第 {line + 1} 行格式错误：{exc}", [RowError(line + 1, None, "bad_csv", str(exc))]
        ) from None


def _xlsx_grid(path: Path) -> Iterable[tuple[int, list[str]]]:
    try:
        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except (InvalidFileException, zipfile.BadZipFile, OSError, KeyError, ValueError) as exc:
        raise ImportFailed(f"无法读取 Excel 文件：{exc}") from None
    try:
        ws = wb.active
        if ws is None or not hasattr(ws, "iter_rows"):
            return
        ws.reset_dimensions()
        for line, values in enumerate(ws.iter_rows(values_only=True), start=1):
            yield line, [_cell(v) for v in values]
    finally:
        wb.close()


def read_rows(path: Path) -> list[tuple[int, dict[str, str]]]:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        grid = _csv_grid(path)
    elif suffix in (".xlsx", ".xlsm"):
        grid = _xlsx_grid(path)
    else:
        raise ImportFailed(f"不支持的文件类型「{suffix or '无扩展名'}」：请使用 .csv 或 .xlsx 文件。")
    columns: dict[str, int] | None = None
    header_line = 0
    rows: list[tuple[int, dict[str, str]]] = []
    for line, cells in grid:
        if not any(cells):
            continue
        if columns is None:
            found = {}
            for i, cell in enumerate(cells):
                name = _HEADER_OF.get(re.sub(r"\s+", "", cell).strip("*＊").casefold())
                if name is not None and name not in found:
                    found[name] = i
            if all(f in found for f in REQUIRED):
                columns, header_line = found, line
            elif line >= 10:
                break
            continue
        rows.append((line, {name: cells[i] if i < len(cells) else "" for name, i in columns.items()}))
        if len(rows) > MAX_ROWS:
            raise ImportFailed(f"一次最多导入 {MAX_ROWS} 行，请拆分文件。")
    if columns is None:
        missing = "、".join(LABELS[f] for f in REQUIRED)
        raise ImportFailed(
            f"找不到表头：须有「{missing}」列",
            [RowError(1, f, "missing_column", f"缺少必填列「{LABELS[f]}」") for f in REQUIRED],
        )
    if not rows:
        raise ImportFailed(
            "文件中没有数据行。", [RowError(header_line, None, "no_data", "表头下面没有数据行")]
        )
    return rows


# --- checking ------------------------------------------------------------------------------------


def parse_time(text: str) -> dt.datetime | None:
    text = text.strip()
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        value = None
        for fmt in _TIME_FORMATS:
            try:
                value = dt.datetime.strptime(text, fmt).replace(tzinfo=LOCAL_TZ)
                break
            except ValueError:
                continue
    if value is None or not 2000 <= value.year <= 2100:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=LOCAL_TZ)  # the 110 system writes local time
    return value.astimezone(dt.UTC)


def _float(text: str, lo: float, hi: float) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if lo <= value <= hi else None


def _classify_chunk(texts: list[str]) -> list[classifier.Classification]:
    return [classifier.classify(t) for t in texts]


def classify_many(texts: Iterable[str]) -> dict[str, classifier.Classification]:
    """Each distinct text classified once; a big file is spread over the CPUs (forked workers share
    the loaded lexicon and jieba dictionary)."""
    unique = list(dict.fromkeys(texts))
    workers = min(os.cpu_count() or 1, 8)
    if len(unique) < PARALLEL_MIN or workers < 2 or "fork" not in mp.get_all_start_methods():
        return dict(zip(unique, _classify_chunk(unique), strict=True))
    classifier.classify(unique[0])  # load before forking, so that no worker loads it again
    size = -(-len(unique) // (workers * 4))
    chunks = [unique[i : i + size] for i in range(0, len(unique), size)]
    with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("fork")) as pool:
        results = [c for part in pool.map(_classify_chunk, chunks) for c in part]
    return dict(zip(unique, results, strict=True))


@dataclass(frozen=True)
class Context:
    actor: Principal
    stations_allowed: frozenset[int] | None
    station_of: dict[str, int]  # code / name (casefolded) / id -> station id
    linker: linking.Linker
    policy: routing.Policy
    classified: dict[str, classifier.Classification] = field(default_factory=dict)


def row_key(raw: dict[str, str]) -> str | None:
    """The row's idempotency key (as ``service.source_key``), or None when it cannot have one."""
    when = parse_time(raw.get("reported_at", ""))
    text = raw.get("description", "").strip()
    if when is None or not text:
        return None
    return source_key(
        raw.get("number", "").strip() or None, when, raw.get("caller_phone", "").strip() or None, text
    )


def check_row(
    line: int, raw: dict[str, str], ctx: Context, *, known: bool = False
) -> tuple[dict[str, Any] | None, list[RowError]]:
    """The row's incident, or its problems. A ``known`` row (already imported) is only checked,
    not classified, linked or routed again."""
    errors: list[RowError] = []

    def bad(name: str, code: str, message: str) -> None:
        errors.append(RowError(line, name, code, message))

    text = raw.get("description", "").strip()
    if len(text) < 2:
        bad("description", "required", "报警内容不能为空")
    elif len(text) > 2000:
        bad("description", "too_long", "报警内容不能超过 2000 字")
    when = parse_time(raw.get("reported_at", ""))
    if when is None:
        bad("reported_at", "invalid", "报警时间无法识别（例如 2026-03-01 08:15）")
    phone = raw.get("caller_phone", "").strip() or None
    if phone is not None and not _PHONE.fullmatch(phone):
        bad("caller_phone", "invalid", "报警电话格式错误")
    number = raw.get("number", "").strip() or None
    if number is not None and len(number) > 60:
        bad("number", "too_long", "接警编号不能超过 60 个字符")
    address = raw.get("address", "").strip()
    if len(address) > 200:
        bad("address", "too_long", "地址不能超过 200 字")
    category: str | None = None
    if raw.get("category", "").strip():
        category = _CATEGORY_OF.get(raw["category"].strip())
        if category is None:
            bad("category", "unknown_category", f"未知的警情类别「{raw['category'].strip()}」")
    lat = lng = None
    if raw.get("lat", "").strip() or raw.get("lng", "").strip():
        lat = _float(raw.get("lat", ""), -90, 90)
        lng = _float(raw.get("lng", ""), -180, 180)
        if lat is None:
            bad("lat", "invalid", "纬度须为 -90 到 90 之间的数")
        if lng is None:
            bad("lng", "invalid", "经度须为 -180 到 180 之间的数")
    station_id: int | None = None
    if raw.get("station", "").strip():
        station_id = ctx.station_of.get(raw["station"].strip().casefold())
        if station_id is None or (
            ctx.stations_allowed is not None and station_id not in ctx.stations_allowed
        ):
            bad("station", "unknown_station", "派出所不存在或不在您的辖区内")
    loss: Decimal | None = None
    if raw.get("fraud_loss_yuan", "").strip():
        try:
            loss = Decimal(raw["fraud_loss_yuan"].strip().replace(",", ""))
        except InvalidOperation:
            loss = None
        if loss is None or not loss.is_finite() or loss < 0 or loss > Decimal("999999999999"):
            bad("fraud_loss_yuan", "invalid", "损失金额须为非负数")
            loss = None
        else:
            loss = loss.quantize(Decimal("0.01"))
    if errors or when is None:
        return None, errors
    if known:
        return {"source_key": source_key(number, when, phone, text)}, []
    try:
        prepared = prepare(
            text=text,
            reported_at=when,
            number=number,
            phone=phone,
            address=address,
            lat=lat,
            lng=lng,
            unit_ref=raw.get("unit_ref", "").strip() or None,
            category=category,
            police=None,
            severity=None,
            fraud_loss=loss,
            station_id=station_id,
            stations=ctx.stations_allowed,
            linker=ctx.linker,
            policy=ctx.policy,
            source="import",
            created_by=ctx.actor.user_id or None,
            classified=ctx.classified.get(text),
        )
    except ValidationFailed as exc:
        detail = exc.details[0] if exc.details else {}
        name = {"unit_ref": "unit_ref", "station_id": "station"}.get(str(detail.get("field")))
        return None, [
            RowError(line, name, str(detail.get("code", "invalid")), str(detail.get("message", exc.message)))
        ]
    return prepared.values, []


# --- the import ----------------------------------------------------------------------------------


async def _existing_keys(session: AsyncSession, keys: Sequence[str]) -> set[str]:
    found: set[str] = set()
    for i in range(0, len(keys), KEY_CHUNK):
        chunk = keys[i : i + KEY_CHUNK]
        found.update(await session.scalars(select(Incident.source_key).where(Incident.source_key.in_(chunk))))
    return found


async def load_context(session: AsyncSession, actor: Principal) -> Context:
    stations = await session.execute(select(Station.id, Station.code, Station.name))
    station_of: dict[str, int] = {}
    for sid, code, name in stations:
        station_of.update({str(sid): sid, code.casefold(): sid, name.casefold(): sid})
    await routing.ensure_rules(session)
    return Context(
        actor=actor,
        stations_allowed=stations_of(actor),
        station_of=station_of,
        linker=await linking.get_linker(session),
        policy=await routing.get_policy(session),
    )


async def import_rows(
    session: AsyncSession,
    actor: Principal,
    rows: Sequence[tuple[int, dict[str, str]]],
    *,
    dry_run: bool = False,
    now: dt.datetime | None = None,
) -> ImportResult:
    """Check every row, then write the new ones (unless ``dry_run``). Commits once."""
    _require(actor, INTAKE_ROLES)
    now = now or utcnow()
    routing.invalidate()
    ctx = await load_context(session, actor)
    # Rows already imported are found first, so a repeated import classifies nothing again.
    keys = {line: key for line, raw in rows if (key := row_key(raw)) is not None}
    existing = await _existing_keys(session, list(dict.fromkeys(keys.values())))
    texts = (
        raw.get("description", "").strip()
        for line, raw in rows
        if not raw.get("category", "").strip() and keys.get(line) not in existing
    )
    ctx.classified.update(classify_many(texts))
    errors: list[RowError] = []
    values: list[dict[str, Any]] = []
    for line, raw in rows:
        parsed, problems = check_row(line, raw, ctx, known=keys.get(line) in existing)
        if problems:
            errors.extend(problems)
        elif parsed is not None:
            values.append(parsed)
    if errors:
        await session.rollback()
        lines = len({e.line for e in errors})
        raise ImportFailed(f"导入失败：{lines} 行共 {len(errors)} 处错误，未写入任何数据。", errors)
    result = ImportResult(rows=len(rows))
    fresh: list[dict[str, Any]] = []
    for v in values:
        if v["source_key"] in existing:
            result.skipped += 1
            continue
        existing.add(v["source_key"])
        fresh.append(v)
        result.by_route[v["route"]] += 1
        result.by_category[v["category"]] += 1
        result.linked += v["unit_id"] is not None
    result.created = len(fresh)
    if dry_run or not fresh:
        await session.rollback()
        return result
    incidents, events, outbox = table_of(Incident), table_of(IncidentEvent), table_of(OutboxEvent)
    actor_id = actor.user_id or None
    for i in range(0, len(fresh), CHUNK):
        chunk = fresh[i : i + CHUNK]
        for v in chunk:
            v.setdefault("created_at", now)
            v.setdefault("updated_at", now)
        inserted = await session.execute(
            insert(incidents).returning(incidents.c.source_key, incidents.c.id), chunk
        )
        ids: dict[str, int] = {str(key): int(iid) for key, iid in inserted}
        await session.execute(
            insert(events),
            [
                {
                    "incident_id": ids[v["source_key"]],
                    "action": "reported",
                    "from_status": None,
                    "to_status": "reported",
                    "actor_id": actor_id,
                    "note": "110 导入",
                    "at": now,
                }
                for v in chunk
            ],
        )
        await session.execute(
            insert(outbox),
            [
                {
                    "topic": REPORTED_TOPIC,
                    "payload": reported_payload(ids[v["source_key"]], v),
                    "created_at": now,
                }
                for v in chunk
            ],
        )
    await audit.record_action(
        session,
        actor,
        "incidents.import",
        "incident",
        None,
        {
            "rows": result.rows,
            "created": result.created,
            "skipped": result.skipped,
            "by_route": dict(result.by_route),
        },
    )
    await session.commit()
    await refresh_statistics(
        session, [Incident.__tablename__, IncidentEvent.__tablename__], rows=result.created
    )
    return result


async def import_file(
    session: AsyncSession, actor: Principal, path: Path, *, dry_run: bool = False
) -> ImportResult:
    return await import_rows(session, actor, read_rows(path), dry_run=dry_run)
