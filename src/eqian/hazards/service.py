"""Rules of inspections and hazards: checklists, inspections, the hazard lifecycle, statistics.

Every read is scoped through ``organizations.service.affairs_clause``; an object outside the actor's
jurisdiction answers ``NotFound``. Each write is audited in its own transaction, which commits once.
Photos are checked (type from magic bytes, size) before anything is written, and a file written for
a transaction that then fails is removed again.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import secrets
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Select, and_, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from eqian.core import audit
from eqian.core.accounts import Role, User
from eqian.core.db import utcnow
from eqian.core.errors import Conflict, Forbidden, NotFound, field_error
from eqian.core.permissions import Principal
from eqian.hazards import schemas
from eqian.hazards.models import ChecklistItem, Hazard, HazardEvent, Inspection, InspectionResult
from eqian.organizations.categories import CATEGORIES
from eqian.organizations.models import Station, Unit
from eqian.organizations.service import affairs_clause

LOCAL_TZ = ZoneInfo("Asia/Shanghai")
CONFIG_PATH = Path(__file__).with_name("checklists.toml")
GENERIC = "generic"
SEVERITIES = ("low", "medium", "high", "critical")
MAX_PHOTO_BYTES = 5 * 1024 * 1024
PHOTO_URL = "/api/v1/hazards/photos/{}"
UPLOAD_SUBDIR = Path("uploads") / "hazards"
MIN_YEAR, MAX_YEAR = 2000, 2100  # dates outside this window are typing errors, not records
PHOTO_NAME = re.compile(r"[0-9a-f]{32}\.(jpg|png)")

INSPECT_ROLES = frozenset({Role.BUREAU_ADMIN, Role.STATION_OFFICER, Role.LIAISON_OFFICER, Role.UNIT_SECURITY})
REVIEW_ROLES = frozenset({Role.BUREAU_ADMIN, Role.STATION_OFFICER, Role.LIAISON_OFFICER})
EVIDENCE_ROLES = frozenset({Role.UNIT_SECURITY})
CHECKLIST_ADMIN_ROLES = frozenset({Role.BUREAU_ADMIN})


# --- configuration -----------------------------------------------------------------------------


@dataclass(frozen=True)
class HazardConfig:
    deadline_days: Mapping[str, int]
    days_per_level: int
    max_level: int
    checklists: Mapping[str, Sequence[Mapping[str, str]]]


@functools.cache
def load_config(path: Path = CONFIG_PATH) -> HazardConfig:
    raw = tomllib.loads(path.read_text(encoding="utf-8"))
    deadline_days = {k: int(v) for k, v in raw["deadline_days"].items()}
    if set(deadline_days) != set(SEVERITIES):
        raise ValueError(f"{path}: deadline_days must name exactly {SEVERITIES}")
    lists = {k: v for k, v in raw.items() if isinstance(v, list)}
    return HazardConfig(
        deadline_days=deadline_days,
        days_per_level=int(raw["escalation"]["days_per_level"]),
        max_level=int(raw["escalation"]["max_level"]),
        checklists=lists,
    )


def deadline_for(severity: str, found_at: dt.datetime) -> dt.datetime:
    return found_at + dt.timedelta(days=load_config().deadline_days[severity])


def local_uploads(var_dir: Path) -> Path:
    return var_dir / UPLOAD_SUBDIR


# --- small helpers -----------------------------------------------------------------------------


def _require(actor: Principal, roles: frozenset[Role]) -> None:
    if actor.role not in roles:
        raise Forbidden("当前角色无权执行此操作")


async def _unit_in_scope(session: AsyncSession, actor: Principal, unit_id: int) -> Unit:
    unit = await session.scalar(select(Unit).where(Unit.id == unit_id, affairs_clause(actor.scope)))
    if unit is None:
        raise NotFound("单位不存在")
    return unit


def _photo_url(name: str | None) -> str | None:
    return PHOTO_URL.format(name) if name else None


def sniff_image(data: bytes) -> str | None:
    """``jpg`` or ``png`` from the file's own first bytes; anything else is ``None``."""
    if data.startswith(b"\xff\xd8\xff"):
        return "jpg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    return None


def check_photo(field: str, data: bytes) -> str:
    """The extension for an acceptable photo, or a 422 naming ``field``."""
    if len(data) > MAX_PHOTO_BYTES:
        raise field_error(field, "照片不能超过 5 MB", "too_large")
    ext = sniff_image(data)
    if ext is None:
        raise field_error(field, "照片须为 JPEG 或 PNG 图片", "unsupported_type")
    return ext


def _store(uploads_dir: Path, data: bytes, ext: str, written: list[Path]) -> str:
    uploads_dir.mkdir(parents=True, exist_ok=True)
    name = f"{secrets.token_hex(16)}.{ext}"
    path = uploads_dir / name
    path.write_bytes(data)
    written.append(path)
    return name


async def _commit(session: AsyncSession, written: list[Path]) -> None:
    try:
        await session.commit()
    except IntegrityError as exc:
        await session.rollback()
        for path in written:
            path.unlink(missing_ok=True)
        raise Conflict("数据已被他人修改，请刷新后重试") from exc
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise


# --- checklists ----------------------------------------------------------------------------------


async def ensure_checklists(session: AsyncSession) -> int:
    """Insert the toml's items that are not in the table yet (by category and code); no commit."""
    existing = set(await session.execute(select(ChecklistItem.category_code, ChecklistItem.code)))
    added = 0
    for category, items in load_config().checklists.items():
        for order, item in enumerate(items):
            if (category, item["code"]) in existing:
                continue
            session.add(
                ChecklistItem(
                    category_code=category,
                    code=item["code"],
                    text=item["text"],
                    severity=item["severity"],
                    sort_order=order,
                    active=True,
                )
            )
            added += 1
    if added:
        await session.flush()
    return added


def checklist_category(category_code: str) -> str:
    return category_code if category_code in load_config().checklists else GENERIC


async def checklist_items(session: AsyncSession, category_code: str) -> list[ChecklistItem]:
    """The active items a unit of this category is inspected against (seeded on first use)."""
    if await session.scalar(select(func.count()).select_from(ChecklistItem)) == 0:
        await ensure_checklists(session)
        await session.commit()
    category = category_code
    if not await session.scalar(
        select(ChecklistItem.id).where(ChecklistItem.category_code == category).limit(1)
    ):
        category = GENERIC
    rows = await session.scalars(
        select(ChecklistItem)
        .where(ChecklistItem.category_code == category, ChecklistItem.active.is_(True))
        .order_by(ChecklistItem.sort_order, ChecklistItem.id)
    )
    return list(rows)


async def list_checklist_items(
    session: AsyncSession, actor: Principal, category: str | None, include_retired: bool = False
) -> list[schemas.ChecklistItemOut]:
    if await session.scalar(select(func.count()).select_from(ChecklistItem)) == 0:
        await ensure_checklists(session)
        await session.commit()
    query = select(ChecklistItem).order_by(
        ChecklistItem.category_code, ChecklistItem.sort_order, ChecklistItem.id
    )
    if category:
        query = query.where(ChecklistItem.category_code == category)
    if not include_retired:
        query = query.where(ChecklistItem.active.is_(True))
    return [schemas.ChecklistItemOut.model_validate(i) for i in await session.scalars(query)]


async def add_checklist_item(
    session: AsyncSession, actor: Principal, body: schemas.ChecklistItemIn
) -> schemas.ChecklistItemOut:
    _require(actor, CHECKLIST_ADMIN_ROLES)
    known = {c.code for c in CATEGORIES} | {GENERIC}
    if body.category_code not in known:
        raise field_error("category_code", "未知的单位类别", "unknown_category")
    item = ChecklistItem(**body.model_dump(), active=True)
    session.add(item)
    try:
        await session.flush()
    except IntegrityError as exc:
        await session.rollback()
        raise Conflict("该类别已有此编码的检查项", code="duplicate_code") from exc
    await audit.record_action(
        session, actor, "hazards.checklist_item.create", "hz_checklist_item", item.id, body.model_dump()
    )
    await _commit(session, [])
    return schemas.ChecklistItemOut.model_validate(item)


async def retire_checklist_item(
    session: AsyncSession, actor: Principal, item_id: int
) -> schemas.ChecklistItemOut:
    """Retired items leave the form; past results and hazards keep pointing at them."""
    _require(actor, CHECKLIST_ADMIN_ROLES)
    item = await session.get(ChecklistItem, item_id)
    if item is None:
        raise NotFound("检查项不存在")
    if item.active:
        item.active = False
        await audit.record_action(
            session, actor, "hazards.checklist_item.retire", "hz_checklist_item", item.id, {"active": False}
        )
        await _commit(session, [])
    return schemas.ChecklistItemOut.model_validate(item)


# --- inspections ---------------------------------------------------------------------------------


async def inspection_form(
    session: AsyncSession, actor: Principal, unit_id: int
) -> tuple[Unit, list[ChecklistItem]]:
    _require(actor, INSPECT_ROLES)
    unit = await _unit_in_scope(session, actor, unit_id)
    return unit, await checklist_items(session, unit.category_code)


async def create_inspection(
    session: AsyncSession,
    actor: Principal,
    body: schemas.InspectionIn,
    photos: Mapping[int, bytes] | None = None,
    *,
    uploads_dir: Path,
    now: dt.datetime | None = None,
) -> schemas.InspectionOut:
    """Record every item's outcome; each failed item opens a hazard. One transaction, one commit."""
    _require(actor, INSPECT_ROLES)
    photos = photos or {}
    unit = await _unit_in_scope(session, actor, body.unit_id)
    items = {i.id: i for i in await checklist_items(session, unit.category_code)}
    seen: set[int] = set()
    for n, r in enumerate(body.results):
        if r.item_id not in items:
            raise field_error(f"results.{n}.item_id", "不是该单位检查表中的有效检查项", "unknown_item")
        if r.item_id in seen:
            raise field_error(f"results.{n}.item_id", "检查项重复", "duplicate_item")
        seen.add(r.item_id)
    for item_id in photos:
        if item_id not in seen:
            raise field_error(f"photo_{item_id}", "照片对应的检查项不在本次检查中", "unknown_item")
    exts = {item_id: check_photo(f"photo_{item_id}", data) for item_id, data in photos.items()}

    now = now or utcnow()
    kind = "self_inspection" if actor.role is Role.UNIT_SECURITY else "inspection"
    inspection = Inspection(
        unit_id=unit.id, kind=kind, inspector_id=actor.user_id or None, inspected_at=now, note=body.note
    )
    session.add(inspection)
    await session.flush()
    written: list[Path] = []
    try:
        hazards: list[Hazard] = []
        for r in body.results:
            photo = (
                _store(uploads_dir, photos[r.item_id], exts[r.item_id], written)
                if r.item_id in photos
                else None
            )
            session.add(
                InspectionResult(
                    inspection_id=inspection.id, item_id=r.item_id, result=r.result, note=r.note, photo=photo
                )
            )
            if r.result == "fail":
                item = items[r.item_id]
                description = item.text + (f"：{r.note}" if r.note else "")
                hazard = Hazard(
                    unit_id=unit.id,
                    inspection_id=inspection.id,
                    item_id=item.id,
                    description=description[:500],
                    severity=item.severity,
                    status="open",
                    found_at=now,
                    deadline=deadline_for(item.severity, now),
                    escalation_level=0,
                )
                session.add(hazard)
                hazards.append(hazard)
        await session.flush()
        for hazard in hazards:
            session.add(
                HazardEvent(
                    hazard_id=hazard.id,
                    action="found",
                    actor_id=actor.user_id or None,
                    note="",
                    photo=None,
                    at=now,
                )
            )
        await audit.record_action(
            session,
            actor,
            "hazards.inspection.create",
            "hz_inspection",
            inspection.id,
            {
                "unit_id": unit.id,
                "kind": kind,
                "failed": sum(r.result == "fail" for r in body.results),
                "hazard_ids": [h.id for h in hazards],
            },
        )
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise
    await _commit(session, written)
    return await get_inspection(session, actor, inspection.id)


def _inspection_query(actor: Principal) -> Select[Inspection, str, str]:
    return (
        select(Inspection, Unit.name, User.display_name)
        .join(Unit, Unit.id == Inspection.unit_id)
        .outerjoin(User, User.id == Inspection.inspector_id)
        .where(affairs_clause(actor.scope))
    )


def _inspection_out(row: Inspection, unit_name: str, inspector: str | None) -> schemas.InspectionOut:
    return schemas.InspectionOut(
        id=row.id,
        unit_id=row.unit_id,
        unit_name=unit_name,
        kind=row.kind,
        inspector_id=row.inspector_id,
        inspector_name=inspector,
        inspected_at=row.inspected_at,
        note=row.note,
    )


async def list_inspections(
    session: AsyncSession, actor: Principal, *, unit_id: int | None, limit: int, offset: int
) -> tuple[list[schemas.InspectionOut], int]:
    query = _inspection_query(actor)
    if unit_id is not None:
        query = query.where(Inspection.unit_id == unit_id)
    total = await session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = await session.execute(
        query.order_by(Inspection.inspected_at.desc(), Inspection.id.desc()).limit(limit).offset(offset)
    )
    return [_inspection_out(*r) for r in rows], total


async def get_inspection(
    session: AsyncSession, actor: Principal, inspection_id: int
) -> schemas.InspectionOut:
    row = (await session.execute(_inspection_query(actor).where(Inspection.id == inspection_id))).first()
    if row is None:
        raise NotFound("检查记录不存在")
    out = _inspection_out(*row)
    results = await session.execute(
        select(InspectionResult, ChecklistItem.code, ChecklistItem.text)
        .join(ChecklistItem, ChecklistItem.id == InspectionResult.item_id)
        .where(InspectionResult.inspection_id == inspection_id)
        .order_by(ChecklistItem.sort_order, ChecklistItem.id)
    )
    out.results = [
        schemas.ResultOut(
            item_id=r.item_id,
            code=code,
            text=text,
            result=r.result,
            note=r.note,
            photo_url=_photo_url(r.photo),
        )
        for r, code, text in results
    ]
    out.hazard_ids = list(
        await session.scalars(
            select(Hazard.id).where(Hazard.inspection_id == inspection_id).order_by(Hazard.id)
        )
    )
    return out


# --- hazards -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HazardFilters:
    status: str | None = None  # open | fix_submitted | verified | overdue | unresolved
    unit_id: int | None = None
    station_id: int | None = None
    category: str | None = None
    severity: str | None = None
    limit: int = 50
    offset: int = 0


def is_overdue(now: dt.datetime) -> ColumnElement[bool]:
    return and_(Hazard.status != "verified", Hazard.deadline < now)


def _hazard_query(actor: Principal) -> Select[Hazard, str, int]:
    return (
        select(Hazard, Unit.name, Unit.station_id)
        .join(Unit, Unit.id == Hazard.unit_id)
        .where(affairs_clause(actor.scope))
    )


def _hazard_out(h: Hazard, unit_name: str, station_id: int, now: dt.datetime) -> schemas.HazardOut:
    return schemas.HazardOut(
        id=h.id,
        unit_id=h.unit_id,
        unit_name=unit_name,
        station_id=station_id,
        inspection_id=h.inspection_id,
        description=h.description,
        severity=h.severity,
        status=h.status,
        overdue=h.status != "verified" and h.deadline < now,
        found_at=h.found_at,
        deadline=h.deadline,
        verified_at=h.verified_at,
        overdue_since=h.overdue_since,
        escalation_level=h.escalation_level,
    )


async def list_hazards(
    session: AsyncSession, actor: Principal, f: HazardFilters, *, now: dt.datetime | None = None
) -> tuple[list[schemas.HazardOut], int]:
    now = now or utcnow()
    query = _hazard_query(actor)
    if f.status == "overdue":
        query = query.where(is_overdue(now))
    elif f.status == "unresolved":
        query = query.where(Hazard.status != "verified")
    elif f.status:
        query = query.where(Hazard.status == f.status)
    if f.unit_id is not None:
        query = query.where(Hazard.unit_id == f.unit_id)
    if f.station_id is not None:
        query = query.where(Unit.station_id == f.station_id)
    if f.category:
        query = query.where(Unit.category_code == f.category)
    if f.severity:
        query = query.where(Hazard.severity == f.severity)
    total = await session.scalar(select(func.count()).select_from(query.subquery())) or 0
    order = (
        (Hazard.verified_at.desc(), Hazard.id.desc())
        if f.status == "verified"
        else (Hazard.deadline, Hazard.id)
    )
    rows = await session.execute(query.order_by(*order).limit(f.limit).offset(f.offset))
    return [_hazard_out(h, name, sid, now) for h, name, sid in rows], total


async def _load_hazard(
    session: AsyncSession, actor: Principal, hazard_id: int, *, for_update: bool = False
) -> tuple[Hazard, str, int]:
    query = _hazard_query(actor).where(Hazard.id == hazard_id)
    if for_update:  # a transition reads the state it changes: no two at once (PostgreSQL)
        query = query.with_for_update(of=Hazard)
    row = (await session.execute(query)).first()
    if row is None:
        raise NotFound("隐患不存在")
    return row


async def get_hazard(
    session: AsyncSession, actor: Principal, hazard_id: int, *, now: dt.datetime | None = None
) -> schemas.HazardDetail:
    hazard, unit_name, station_id = await _load_hazard(session, actor, hazard_id)
    out = schemas.HazardDetail(**_hazard_out(hazard, unit_name, station_id, now or utcnow()).model_dump())
    events = await session.execute(
        select(HazardEvent, User.display_name)
        .outerjoin(User, User.id == HazardEvent.actor_id)
        .where(HazardEvent.hazard_id == hazard_id)
        .order_by(HazardEvent.at, HazardEvent.id)
    )
    out.events = [
        schemas.HazardEventOut(
            action=e.action, actor_name=name, note=e.note, photo_url=_photo_url(e.photo), at=e.at
        )
        for e, name in events
    ]
    return out


async def submit_evidence(
    session: AsyncSession,
    actor: Principal,
    hazard_id: int,
    body: schemas.EvidenceIn,
    photo: bytes | None,
    *,
    uploads_dir: Path,
) -> schemas.HazardDetail:
    """The unit reports the fix (text and an optional photo): open → fix_submitted."""
    hazard, _, _ = await _load_hazard(session, actor, hazard_id, for_update=True)
    _require(actor, EVIDENCE_ROLES)
    if hazard.status != "open":
        raise Conflict("该隐患当前不能提交整改材料", code="invalid_state")
    ext = check_photo("photo", photo) if photo else None
    written: list[Path] = []
    name = _store(uploads_dir, photo, ext, written) if photo and ext else None
    try:
        hazard.status = "fix_submitted"
        session.add(
            HazardEvent(
                hazard_id=hazard.id,
                action="fix_submitted",
                actor_id=actor.user_id or None,
                note=body.note,
                photo=name,
                at=utcnow(),
            )
        )
        await audit.record_action(
            session,
            actor,
            "hazards.hazard.fix_submitted",
            "hz_hazard",
            hazard.id,
            {"status": ["open", "fix_submitted"], "photo": bool(name)},
        )
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise
    await _commit(session, written)
    return await get_hazard(session, actor, hazard_id)


async def review_hazard(
    session: AsyncSession, actor: Principal, hazard_id: int, body: schemas.ReviewIn
) -> schemas.HazardDetail:
    """An officer verifies the fix (closed) or rejects it with a reason (back to open)."""
    hazard, _, _ = await _load_hazard(session, actor, hazard_id, for_update=True)
    _require(actor, REVIEW_ROLES)
    if hazard.status != "fix_submitted":
        raise Conflict("该隐患尚未提交整改材料", code="invalid_state")
    if body.decision == "reject" and not body.reason:
        raise field_error("reason", "驳回须填写原因", "required")
    now = utcnow()
    if body.decision == "verify":
        hazard.status, hazard.verified_at, action = "verified", now, "verified"
    else:
        hazard.status, action = "open", "rejected"
    session.add(
        HazardEvent(
            hazard_id=hazard.id, action=action, actor_id=actor.user_id or None, note=body.reason, at=now
        )
    )
    await audit.record_action(
        session,
        actor,
        f"hazards.hazard.{action}",
        "hz_hazard",
        hazard.id,
        {"status": ["fix_submitted", hazard.status], "reason": body.reason},
    )
    await _commit(session, [])
    return await get_hazard(session, actor, hazard_id)


async def photo_file(session: AsyncSession, actor: Principal, name: str, uploads_dir: Path) -> Path:
    """The stored photo ``name`` if it belongs to an inspection or hazard of a unit in scope."""
    in_results = (
        select(Inspection.unit_id)
        .join(InspectionResult, InspectionResult.inspection_id == Inspection.id)
        .where(InspectionResult.photo == name)
    )
    in_events = (
        select(Hazard.unit_id)
        .join(HazardEvent, HazardEvent.hazard_id == Hazard.id)
        .where(HazardEvent.photo == name)
    )
    unit_ids = in_results.union(in_events).subquery()
    found = await session.scalar(
        select(Unit.id).where(Unit.id.in_(select(unit_ids.c[0])), affairs_clause(actor.scope)).limit(1)
    )
    path = uploads_dir / name
    if found is None or not path.is_file():
        raise NotFound("照片不存在")
    return path


# --- statistics ---------------------------------------------------------------------------------


def _month_expr(column: Any, dialect: str) -> ColumnElement[str]:
    # Asia/Shanghai has had no daylight saving since 1991: local month = UTC + 8 hours.
    if dialect == "postgresql":
        return func.to_char(func.timezone("Asia/Shanghai", column), "YYYY-MM")
    return func.strftime("%Y-%m", column, "+8 hours")


def _local_bounds(
    since: dt.date | None, until: dt.date | None
) -> tuple[dt.datetime | None, dt.datetime | None]:
    lo = dt.datetime.combine(since, dt.time(0), LOCAL_TZ).astimezone(dt.UTC) if since else None
    hi = (
        dt.datetime.combine(until + dt.timedelta(days=1), dt.time(0), LOCAL_TZ).astimezone(dt.UTC)
        if until
        else None
    )
    return lo, hi


async def stats(
    session: AsyncSession,
    actor: Principal,
    group: str,
    *,
    since: dt.date | None = None,
    until: dt.date | None = None,
    now: dt.datetime | None = None,
) -> list[schemas.StatsRow]:
    """发现 / 整改 / 逾期 in the scope, per unit, station or month (Asia/Shanghai), dates inclusive.

    found: hazards found in the period; verified: hazards verified in it; overdue: hazards whose
    deadline fell in the period (and has passed) and that were not verified by then.
    """
    for name, day in (("from", since), ("to", until)):
        if day is not None and not MIN_YEAR <= day.year <= MAX_YEAR:
            raise field_error(name, f"日期须在 {MIN_YEAR}–{MAX_YEAR} 年之间", "out_of_range")
    if since and until and since > until:
        raise field_error("from", "开始日期不能晚于结束日期", "invalid_range")
    now = now or utcnow()
    lo, hi = _local_bounds(since, until)
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"

    def key_of(column: Any) -> Any:
        if group == "unit":
            return Unit.id
        if group == "station":
            return Unit.station_id
        return _month_expr(column, dialect)

    def window(column: Any) -> list[ColumnElement[bool]]:
        clauses: list[ColumnElement[bool]] = []
        if lo is not None:
            clauses.append(column >= lo)
        if hi is not None:
            clauses.append(column < hi)
        return clauses

    metrics: dict[str, tuple[Any, list[ColumnElement[bool]]]] = {
        "found": (Hazard.found_at, window(Hazard.found_at)),
        "verified": (Hazard.verified_at, [Hazard.verified_at.is_not(None), *window(Hazard.verified_at)]),
        "overdue": (
            Hazard.deadline,
            [
                Hazard.deadline < now,
                or_(Hazard.verified_at.is_(None), Hazard.verified_at > Hazard.deadline),
                *window(Hazard.deadline),
            ],
        ),
    }
    counts: dict[str, dict[str, int]] = {}
    for metric, (column, where) in metrics.items():
        key = key_of(column).label("k")
        rows = await session.execute(
            select(key, func.count())
            .select_from(Hazard)
            .join(Unit, Unit.id == Hazard.unit_id)
            .where(affairs_clause(actor.scope), *where)
            .group_by(key)
        )
        for k, n in rows:
            counts.setdefault(str(k), {"found": 0, "verified": 0, "overdue": 0})[metric] = int(n)
    labels: dict[str, str] = {}
    if group == "unit" and counts:
        ids = [int(k) for k in counts]
        labels = {
            str(i): n for i, n in (await session.execute(select(Unit.id, Unit.name).where(Unit.id.in_(ids))))
        }
    elif group == "station" and counts:
        ids = [int(k) for k in counts]
        labels = {
            str(i): n
            for i, n in (
                await session.execute(select(Station.id, Station.name).where(Station.id.in_(ids)))
            ).all()
        }
    ordered = sorted(counts, key=(lambda k: k) if group == "month" else (lambda k: int(k)))
    return [schemas.StatsRow(key=k, label=labels.get(k, k), **counts[k]) for k in ordered]
