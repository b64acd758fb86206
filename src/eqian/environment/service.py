"""Rules of eco-policing: smelter registry, append-only ash ledger, balance, alerts, eco incidents.

Every read is scoped to the actor's jurisdiction (units through ``organizations.service.unit_clause``,
eco incidents and patrols by station or joint zone); an object outside it answers ``NotFound``.
Ledger rows are only ever inserted: a correction is a new row naming the one it supersedes. Each
ledger write is audited and re-runs the checks of its unit in the same transaction, then commits.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Select, false, func, or_, select, text, true
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from eqian.core import audit
from eqian.core.accounts import Role
from eqian.core.db import utcnow
from eqian.core.errors import Conflict, NotFound, ValidationFailed, field_error
from eqian.core.geo import polygon_area_km2
from eqian.core.permissions import Principal, Scope, ScopeKind
from eqian.environment import schemas
from eqian.environment.balance import Month, balance_series, compute_balance, effective, month, shift_period
from eqian.environment.checks import CheckReport, run_checks
from eqian.environment.config import load_config
from eqian.environment.models import (
    Carrier,
    DisposalFacility,
    EcoIncident,
    EcoPatrol,
    EnvAlert,
    Manifest,
    ManifestReceipt,
    ProductionReport,
    SmelterProcess,
    StockCount,
)
from eqian.organizations.models import JointZone, Station, Unit
from eqian.organizations.service import load_zones, unit_clause, visible_unit_ids, zone_containing

LOCAL_TZ = ZoneInfo("Asia/Shanghai")
MAX_ID = 2**31 - 1  # ids are 32-bit integers on PostgreSQL; anything larger simply does not exist
MIN_YEAR, MAX_YEAR = 2000, 2100  # dates outside this window are typing errors, not records
CLOCK_SLACK = dt.timedelta(hours=1)  # a device clock slightly ahead is not "in the future"
_PG_LEDGER_LOCK = 7_365_002  # advisory lock (with the unit id) serialising ledger writes of one unit

PROCESS_WRITE_ROLES = (Role.BUREAU_ADMIN, Role.STATION_OFFICER)
LEDGER_WRITE_ROLES = (Role.BUREAU_ADMIN, Role.STATION_OFFICER, Role.UNIT_SECURITY)
RECEIPT_WRITE_ROLES = (Role.BUREAU_ADMIN, Role.STATION_OFFICER, Role.PARTNER_OFFICER)
# Facilities and carriers: officers, and a smelter's own staff who pick them in the manifest form.
REFERENCE_READ_ROLES = frozenset(
    {Role.BUREAU_ADMIN, Role.STATION_OFFICER, Role.LIAISON_OFFICER, Role.PARTNER_OFFICER, Role.UNIT_SECURITY}
)
ECO_WRITE_ROLES = (Role.BUREAU_ADMIN, Role.STATION_OFFICER, Role.PARTNER_OFFICER)
FACILITY_ALERT_ROLES = (Role.BUREAU_ADMIN, Role.STATION_OFFICER)

LedgerKind = Literal["production", "stock", "manifest", "receipt"]
_KIND_ORDER: dict[str, int] = {"stock": 0, "production": 1, "manifest": 2, "receipt": 3}


# --- small helpers -------------------------------------------------------------------------------


def _id_ok(value: int | None) -> bool:
    return value is not None and 1 <= value <= MAX_ID


def _text(field: str, value: str) -> str:
    """PostgreSQL refuses NUL characters in text; refuse them for both databases alike."""
    if "\x00" in value:
        raise field_error(field, "包含非法字符", "invalid_character")
    return value


def _aware(field: str, value: dt.datetime, *, not_future: bool = True) -> dt.datetime:
    """A client time as aware UTC: a time without offset is Asia/Shanghai wall-clock time."""
    if not MIN_YEAR <= value.year <= MAX_YEAR:
        raise field_error(field, f"时间须在 {MIN_YEAR}–{MAX_YEAR} 年之间", "out_of_range")
    if value.tzinfo is None or value.utcoffset() is None:
        value = value.replace(tzinfo=LOCAL_TZ)
    value = value.astimezone(dt.UTC)
    if not_future and value > utcnow() + CLOCK_SLACK:
        raise field_error(field, "不能晚于当前时间", "in_future")
    return value


def _local_today() -> dt.date:
    return utcnow().astimezone(LOCAL_TZ).date()


def current_period() -> str:
    return _local_today().strftime("%Y-%m")


def parse_period(period: str) -> Month:
    """The month ``YYYY-MM`` (Asia/Shanghai), or a 422 on ``period``."""
    try:
        year = int(period[:4])
    except ValueError as exc:
        raise field_error("period", "月份格式应为 YYYY-MM", "invalid_period") from exc
    if not MIN_YEAR <= year <= MAX_YEAR:  # before month(): year 1 would overflow in UTC
        raise field_error("period", f"月份须在 {MIN_YEAR}–{MAX_YEAR} 年之间", "out_of_range")
    try:
        return month(period)
    except ValueError as exc:
        raise field_error("period", "月份格式应为 YYYY-MM", "invalid_period") from exc


def _local_midnight_utc(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(0), LOCAL_TZ).astimezone(dt.UTC)


async def _commit(session: AsyncSession, message: str, code: str = "conflict") -> None:
    """Commit; a unique constraint lost to a concurrent request is a 409, not a 500."""
    try:
        await session.commit()
    except IntegrityError as exc:
        await session.rollback()
        raise Conflict(message, code=code) from exc


# --- smelters and processes ------------------------------------------------------------------------


def is_smelter() -> ColumnElement[bool]:
    """A unit is a smelter when it has at least one process line."""
    return select(SmelterProcess.id).where(SmelterProcess.unit_id == Unit.id).exists()


def smelter_ids(scope: Scope) -> Select[int]:
    """The smelters a scope may see, as a subquery of unit ids."""
    return select(Unit.id).where(unit_clause(scope), is_smelter())


@dataclass(frozen=True)
class SmelterFilters:
    station_id: int | None = None
    zone_id: int | None = None
    q: str | None = None
    limit: int = 50
    offset: int = 0


async def _processes_of(
    session: AsyncSession, unit_ids: Sequence[int]
) -> dict[int, list[schemas.ProcessOut]]:
    by_unit: dict[int, list[schemas.ProcessOut]] = {uid: [] for uid in unit_ids}
    if unit_ids:
        rows = await session.scalars(
            select(SmelterProcess)
            .where(SmelterProcess.unit_id.in_(list(unit_ids)))
            .order_by(SmelterProcess.unit_id, SmelterProcess.id)
        )
        for p in rows:
            by_unit[p.unit_id].append(schemas.ProcessOut.model_validate(p))
    return by_unit


def _smelter_out(unit: Unit, station_name: str, processes: list[schemas.ProcessOut]) -> schemas.SmelterOut:
    return schemas.SmelterOut(
        unit_id=unit.id,
        name=unit.name,
        station_id=unit.station_id,
        station_name=station_name,
        joint_zone_id=unit.joint_zone_id,
        lat=unit.lat,
        lng=unit.lng,
        processes=processes,
    )


async def list_smelters(
    session: AsyncSession, actor: Principal, f: SmelterFilters
) -> tuple[list[schemas.SmelterOut], int]:
    where: list[ColumnElement[bool]] = [unit_clause(actor.scope), is_smelter()]
    if f.station_id is not None:
        where.append(Unit.station_id == f.station_id)
    if f.zone_id is not None:
        where.append(Unit.joint_zone_id == f.zone_id)
    if f.q:
        needle = (
            "%" + _text("q", f.q.strip()).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        )
        where.append(Unit.name.ilike(needle, escape="\\"))
    total = await session.scalar(select(func.count()).select_from(Unit).where(*where)) or 0
    rows = (
        await session.execute(
            select(Unit, Station.name)
            .join(Station, Station.id == Unit.station_id)
            .where(*where)
            .order_by(Unit.name, Unit.id)
            .limit(f.limit)
            .offset(f.offset)
        )
    ).all()
    processes = await _processes_of(session, [u.id for u, _ in rows])
    return [_smelter_out(u, name, processes[u.id]) for u, name in rows], total


async def _load_smelter(session: AsyncSession, actor: Principal, unit_id: int) -> Unit:
    unit = None
    if _id_ok(unit_id):
        unit = await session.scalar(
            select(Unit).where(Unit.id == unit_id, unit_clause(actor.scope), is_smelter())
        )
    if unit is None:
        raise NotFound("冶炼企业不存在")
    return unit


async def get_smelter(session: AsyncSession, actor: Principal, unit_id: int) -> schemas.SmelterOut:
    unit = await _load_smelter(session, actor, unit_id)
    station_name = await session.scalar(select(Station.name).where(Station.id == unit.station_id)) or ""
    processes = await _processes_of(session, [unit.id])
    return _smelter_out(unit, station_name, processes[unit.id])


def _check_coefficient(value: float) -> None:
    cfg = load_config()
    if not cfg.coefficient_in_range(value):
        raise ValidationFailed(
            f"coefficient_kg_per_t: 产灰系数须在 {cfg.coefficient_min_kg_per_t:g}–"
            f"{cfg.coefficient_max_kg_per_t:g} kg/t 之间",
            details=[
                {
                    "field": "coefficient_kg_per_t",
                    "code": "out_of_range",
                    "message": f"产灰系数须在 {cfg.coefficient_min_kg_per_t:g}–"
                    f"{cfg.coefficient_max_kg_per_t:g} kg/t 之间",
                }
            ],
        )


def _duplicate_process() -> Conflict:
    return Conflict(
        "该单位已有同名工艺",
        code="duplicate_process",
        details=[{"field": "name", "code": "duplicate", "message": "该单位已有同名工艺"}],
    )


async def create_process(
    session: AsyncSession, actor: Principal, unit_id: int, data: schemas.ProcessIn
) -> schemas.ProcessOut:
    """Add a process line; the unit need not be a smelter yet (its first process makes it one)."""
    unit = None
    if _id_ok(unit_id):
        unit = await session.scalar(select(Unit).where(Unit.id == unit_id, unit_clause(actor.scope)))
    if unit is None:
        raise NotFound("单位不存在")
    actor.require_role(*PROCESS_WRITE_ROLES)
    name = _text("name", data.name)
    _check_coefficient(data.coefficient_kg_per_t)
    taken = await session.scalar(
        select(SmelterProcess.id).where(SmelterProcess.unit_id == unit.id, SmelterProcess.name == name)
    )
    if taken is not None:
        raise _duplicate_process()
    process = SmelterProcess(
        unit_id=unit.id, name=name, coefficient_kg_per_t=data.coefficient_kg_per_t, active=True
    )
    session.add(process)
    await session.flush()
    await audit.record_action(
        session,
        actor,
        "env.process.create",
        "env_smelter_process",
        process.id,
        {"unit_id": unit.id, "name": name, "coefficient_kg_per_t": data.coefficient_kg_per_t},
    )
    out = schemas.ProcessOut.model_validate(process)
    await _commit(session, "该单位已有同名工艺", "duplicate_process")
    return out


async def update_process(
    session: AsyncSession, actor: Principal, unit_id: int, process_id: int, data: schemas.ProcessUpdate
) -> schemas.ProcessOut:
    """Rename, re-rate or (de)activate a process. A new coefficient re-runs the unit's checks."""
    row = None
    if _id_ok(unit_id) and _id_ok(process_id):
        row = (
            await session.execute(
                select(SmelterProcess)
                .join(Unit, Unit.id == SmelterProcess.unit_id)
                .where(
                    SmelterProcess.id == process_id,
                    SmelterProcess.unit_id == unit_id,
                    unit_clause(actor.scope),
                )
            )
        ).scalar_one_or_none()
    if row is None:
        raise NotFound("工艺不存在")
    actor.require_role(*PROCESS_WRITE_ROLES)
    given = data.model_dump(exclude_unset=True)
    for key, value in given.items():
        if value is None:
            raise field_error(key, "不能为空", "required")
    if "name" in given:
        given["name"] = _text("name", given["name"])
        taken = await session.scalar(
            select(SmelterProcess.id).where(
                SmelterProcess.unit_id == row.unit_id,
                SmelterProcess.name == given["name"],
                SmelterProcess.id != row.id,
            )
        )
        if taken is not None:
            raise _duplicate_process()
    if "coefficient_kg_per_t" in given:
        _check_coefficient(given["coefficient_kg_per_t"])
    changes = {k: [getattr(row, k), v] for k, v in given.items() if getattr(row, k) != v}
    for key, value in given.items():
        setattr(row, key, value)
    if changes:
        await session.flush()
        await audit.record_action(
            session,
            actor,
            "env.process.update",
            "env_smelter_process",
            row.id,
            {"unit_id": row.unit_id, **changes},
        )
        if "coefficient_kg_per_t" in changes or "active" in changes:
            await run_checks(session, now=utcnow(), unit_ids=[row.unit_id])
    out = schemas.ProcessOut.model_validate(row)
    await _commit(session, "该单位已有同名工艺", "duplicate_process")
    return out


# --- facilities and carriers -----------------------------------------------------------------------


def _reads_references(actor: Principal) -> bool:
    return actor.role in REFERENCE_READ_ROLES and actor.scope.kind is not ScopeKind.NONE


async def list_facilities(
    session: AsyncSession, actor: Principal, *, limit: int, offset: int
) -> tuple[list[schemas.FacilityOut], int]:
    if not _reads_references(actor):
        return [], 0
    total = await session.scalar(select(func.count()).select_from(DisposalFacility)) or 0
    rows = await session.scalars(
        select(DisposalFacility)
        .order_by(DisposalFacility.name, DisposalFacility.id)
        .limit(limit)
        .offset(offset)
    )
    return [schemas.FacilityOut.model_validate(r) for r in rows], total


async def get_facility(session: AsyncSession, actor: Principal, facility_id: int) -> schemas.FacilityOut:
    row = await session.get(DisposalFacility, facility_id) if _id_ok(facility_id) else None
    if row is None or not _reads_references(actor):
        raise NotFound("处置单位不存在")
    return schemas.FacilityOut.model_validate(row)


def _duplicate_licence(what: str) -> Conflict:
    return Conflict(
        f"{what}名称或许可证号已登记",
        code="duplicate",
        details=[{"field": "licence_no", "code": "duplicate", "message": f"{what}名称或许可证号已登记"}],
    )


async def create_facility(
    session: AsyncSession, actor: Principal, data: schemas.FacilityIn
) -> schemas.FacilityOut:
    actor.require_role(Role.BUREAU_ADMIN)
    values = data.model_dump()
    for key in ("name", "licence_no", "address"):
        _text(key, values[key])
    if not math.isfinite(data.licensed_capacity_t_per_year):
        raise field_error("licensed_capacity_t_per_year", "须为有限的正数", "not_finite")
    taken = await session.scalar(
        select(DisposalFacility.id).where(
            or_(DisposalFacility.name == data.name, DisposalFacility.licence_no == data.licence_no)
        )
    )
    if taken is not None:
        raise _duplicate_licence("处置单位")
    row = DisposalFacility(**values)
    session.add(row)
    await session.flush()
    await audit.record_action(session, actor, "env.facility.create", "env_facility", row.id, values)
    out = schemas.FacilityOut.model_validate(row)
    await _commit(session, "处置单位名称或许可证号已登记", "duplicate")
    return out


async def list_carriers(
    session: AsyncSession, actor: Principal, *, limit: int, offset: int
) -> tuple[list[schemas.CarrierOut], int]:
    if not _reads_references(actor):
        return [], 0
    total = await session.scalar(select(func.count()).select_from(Carrier)) or 0
    rows = await session.scalars(
        select(Carrier).order_by(Carrier.name, Carrier.id).limit(limit).offset(offset)
    )
    return [schemas.CarrierOut.model_validate(r) for r in rows], total


async def get_carrier(session: AsyncSession, actor: Principal, carrier_id: int) -> schemas.CarrierOut:
    row = await session.get(Carrier, carrier_id) if _id_ok(carrier_id) else None
    if row is None or not _reads_references(actor):
        raise NotFound("运输单位不存在")
    return schemas.CarrierOut.model_validate(row)


async def create_carrier(
    session: AsyncSession, actor: Principal, data: schemas.CarrierIn
) -> schemas.CarrierOut:
    actor.require_role(Role.BUREAU_ADMIN)
    values = data.model_dump()
    for key in ("name", "licence_no"):
        _text(key, values[key])
    taken = await session.scalar(
        select(Carrier.id).where(or_(Carrier.name == data.name, Carrier.licence_no == data.licence_no))
    )
    if taken is not None:
        raise _duplicate_licence("运输单位")
    row = Carrier(**values)
    session.add(row)
    await session.flush()
    await audit.record_action(session, actor, "env.carrier.create", "env_carrier", row.id, values)
    out = schemas.CarrierOut.model_validate(row)
    await _commit(session, "运输单位名称或许可证号已登记", "duplicate")
    return out


# --- ledger: reading ---------------------------------------------------------------------------------


def _production_query() -> Select[ProductionReport, str, float, int]:
    nxt = aliased(ProductionReport)
    return (
        select(ProductionReport, SmelterProcess.name, SmelterProcess.coefficient_kg_per_t, nxt.id)
        .join(SmelterProcess, SmelterProcess.id == ProductionReport.process_id)
        .outerjoin(nxt, nxt.supersedes_id == ProductionReport.id)
    )


def _stock_query() -> Select[StockCount, int]:
    nxt = aliased(StockCount)
    return select(StockCount, nxt.id).outerjoin(nxt, nxt.supersedes_id == StockCount.id)


def _manifest_query() -> Select[Manifest, str, str, int]:
    nxt = aliased(Manifest)
    return (
        select(Manifest, Carrier.name, DisposalFacility.name, nxt.id)
        .join(Carrier, Carrier.id == Manifest.carrier_id)
        .join(DisposalFacility, DisposalFacility.id == Manifest.facility_id)
        .outerjoin(nxt, nxt.supersedes_id == Manifest.id)
    )


def _receipt_query() -> Select[ManifestReceipt, int]:
    nxt = aliased(ManifestReceipt)
    return select(ManifestReceipt, nxt.id).outerjoin(nxt, nxt.supersedes_id == ManifestReceipt.id)


def _entry(
    kind: LedgerKind,
    row: ProductionReport | StockCount | Manifest | ManifestReceipt,
    at: dt.datetime,
    tonnes: float,
    detail: dict[str, Any],
    superseded_by: int | None,
) -> schemas.LedgerEntryOut:
    return schemas.LedgerEntryOut(
        id=row.id,
        kind=kind,
        unit_id=row.unit_id,
        at=at,
        tonnes=tonnes,
        detail={**detail, "note": row.note},
        superseded_by=superseded_by,
        supersedes_id=row.supersedes_id,
        entered_by=row.entered_by,
        created_at=row.created_at,
    )


async def _production_entries(
    session: AsyncSession, *where: ColumnElement[bool]
) -> list[schemas.LedgerEntryOut]:
    rows = await session.execute(_production_query().where(*where))
    return [
        _entry(
            "production",
            r,
            _local_midnight_utc(r.produced_on),
            r.aluminium_t,
            {
                "process_id": r.process_id,
                "process_name": pname,
                "coefficient_kg_per_t": coef,
                "produced_on": r.produced_on.isoformat(),
                "expected_ash_t": round(r.aluminium_t * coef / 1000, 6),
            },
            nxt,
        )
        for r, pname, coef, nxt in rows.all()
    ]


async def _stock_entries(session: AsyncSession, *where: ColumnElement[bool]) -> list[schemas.LedgerEntryOut]:
    rows = await session.execute(_stock_query().where(*where))
    return [_entry("stock", r, r.counted_at, r.ash_t, {}, nxt) for r, nxt in rows.all()]


async def _manifest_entries(
    session: AsyncSession, *where: ColumnElement[bool]
) -> list[schemas.LedgerEntryOut]:
    rows = await session.execute(_manifest_query().where(*where))
    return [
        _entry(
            "manifest",
            r,
            r.shipped_at,
            r.shipped_t,
            {
                "manifest_no": r.manifest_no,
                "carrier_id": r.carrier_id,
                "carrier_name": carrier,
                "vehicle_plate": r.vehicle_plate,
                "facility_id": r.facility_id,
                "facility_name": facility,
            },
            nxt,
        )
        for r, carrier, facility, nxt in rows.all()
    ]


async def _receipt_entries(
    session: AsyncSession, *where: ColumnElement[bool]
) -> list[schemas.LedgerEntryOut]:
    rows = await session.execute(_receipt_query().where(*where))
    return [
        _entry("receipt", r, r.received_at, r.received_t, {"manifest_no": r.manifest_no}, nxt)
        for r, nxt in rows.all()
    ]


async def list_ledger(
    session: AsyncSession, actor: Principal, unit_id: int, period: str
) -> list[schemas.LedgerEntryOut]:
    """Every ledger row of a smelter in a month, corrections and the rows they replaced included.

    The month is Asia/Shanghai's. Stock counts include the last count before the month (the
    opening stock of the balance); receipts include those of manifests shipped in the month.
    """
    unit = await _load_smelter(session, actor, unit_id)
    m = parse_period(period)
    first, nxt_first, start, end = m.first_day, m.next_first_day, m.start, m.end
    shipped_in_month = select(Manifest.manifest_no).where(
        Manifest.unit_id == unit.id, Manifest.shipped_at >= start, Manifest.shipped_at < end
    )
    opening = aliased(StockCount)
    superseder = aliased(StockCount)
    last_before = (
        select(opening.id)
        .where(
            opening.unit_id == unit.id,
            opening.counted_at < start,
            ~select(superseder.id).where(superseder.supersedes_id == opening.id).exists(),
        )
        .order_by(opening.counted_at.desc(), opening.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    entries = [
        *await _production_entries(
            session,
            ProductionReport.unit_id == unit.id,
            ProductionReport.produced_on >= first,
            ProductionReport.produced_on < nxt_first,
        ),
        *await _stock_entries(
            session,
            StockCount.unit_id == unit.id,
            or_(
                (StockCount.counted_at >= start) & (StockCount.counted_at < end),
                StockCount.id == last_before,
            ),
        ),
        *await _manifest_entries(
            session, Manifest.unit_id == unit.id, Manifest.shipped_at >= start, Manifest.shipped_at < end
        ),
        *await _receipt_entries(
            session,
            ManifestReceipt.unit_id == unit.id,
            or_(
                (ManifestReceipt.received_at >= start) & (ManifestReceipt.received_at < end),
                ManifestReceipt.manifest_no.in_(shipped_in_month),
            ),
        ),
    ]
    entries.sort(key=lambda e: (e.at, _KIND_ORDER[e.kind], e.id))
    return entries


# --- ledger: writing ---------------------------------------------------------------------------------


async def _smelter_for_write(
    session: AsyncSession, actor: Principal, unit_id: int, roles: Sequence[Role]
) -> Unit:
    unit = await _load_smelter(session, actor, unit_id)
    actor.require_role(*roles)
    if session.get_bind().dialect.name == "postgresql":
        # Uniqueness of effective manifest numbers and one receipt per manifest are rules no
        # constraint can hold (superseded rows share them): writes of one unit take turns.
        await session.execute(
            text("SELECT pg_advisory_xact_lock(:k, :u)"), {"k": _PG_LEDGER_LOCK, "u": unit.id}
        )
    return unit


_M = TypeVar("_M", ProductionReport, StockCount, Manifest, ManifestReceipt)


async def _superseded(
    session: AsyncSession, model: type[_M], supersedes_id: int | None, unit_id: int
) -> _M | None:
    """The effective row of the same kind and unit that a correction replaces."""
    if supersedes_id is None:
        return None
    row = await session.get(model, supersedes_id) if _id_ok(supersedes_id) else None
    if row is None or row.unit_id != unit_id:
        raise field_error("supersedes_id", "要更正的记录不存在或不属于该单位", "not_found")
    if await session.scalar(select(model.id).where(model.supersedes_id == row.id)) is not None:
        raise Conflict(
            "该记录已被更正过，请更正最新的记录",
            code="already_superseded",
            details=[{"field": "supersedes_id", "code": "already_superseded", "message": "该记录已被更正过"}],
        )
    return row


def _row_changes(row: ProductionReport | StockCount | Manifest | ManifestReceipt) -> dict[str, Any]:
    skip = {"id", "created_at"}
    return {c.key: getattr(row, c.key) for c in row.__table__.columns if c.key not in skip}


async def _finish_ledger_write(
    session: AsyncSession,
    actor: Principal,
    kind: str,
    row: ProductionReport | StockCount | Manifest | ManifestReceipt,
) -> None:
    """Audit the new row, re-run the unit's checks, commit — all one transaction."""
    session.add(row)
    try:
        await session.flush()
    except IntegrityError as exc:  # a concurrent correction of the same row won the unique slot
        await session.rollback()
        raise Conflict("该记录已被更正过，请更正最新的记录", code="already_superseded") from exc
    await audit.record_action(session, actor, f"env.{kind}.create", f"env_{kind}", row.id, _row_changes(row))
    await run_checks(session, now=utcnow(), unit_ids=[row.unit_id])
    await _commit(session, "该记录已被更正过，请更正最新的记录", "already_superseded")


async def add_production(
    session: AsyncSession, actor: Principal, unit_id: int, data: schemas.ProductionIn
) -> schemas.LedgerEntryOut:
    unit = await _smelter_for_write(session, actor, unit_id, LEDGER_WRITE_ROLES)
    process = None
    if _id_ok(data.process_id):
        process = await session.scalar(
            select(SmelterProcess).where(
                SmelterProcess.id == data.process_id, SmelterProcess.unit_id == unit.id
            )
        )
    if process is None:
        raise field_error("process_id", "工艺不存在或不属于该单位", "unknown_process")
    if not MIN_YEAR <= data.produced_on.year <= MAX_YEAR:
        raise field_error("produced_on", f"日期须在 {MIN_YEAR}–{MAX_YEAR} 年之间", "out_of_range")
    if data.produced_on > _local_today():
        raise field_error("produced_on", "不能晚于今天", "in_future")
    note = _text("note", data.note)
    await _superseded(session, ProductionReport, data.supersedes_id, unit.id)
    row = ProductionReport(
        unit_id=unit.id,
        process_id=process.id,
        produced_on=data.produced_on,
        aluminium_t=data.aluminium_t,
        note=note,
        supersedes_id=data.supersedes_id,
        entered_by=actor.user_id or None,
    )
    await _finish_ledger_write(session, actor, "production", row)
    return (await _production_entries(session, ProductionReport.id == row.id))[0]


async def add_stock_count(
    session: AsyncSession, actor: Principal, unit_id: int, data: schemas.StockCountIn
) -> schemas.LedgerEntryOut:
    unit = await _smelter_for_write(session, actor, unit_id, LEDGER_WRITE_ROLES)
    counted_at = _aware("counted_at", data.counted_at)
    note = _text("note", data.note)
    await _superseded(session, StockCount, data.supersedes_id, unit.id)
    row = StockCount(
        unit_id=unit.id,
        counted_at=counted_at,
        ash_t=data.ash_t,
        note=note,
        supersedes_id=data.supersedes_id,
        entered_by=actor.user_id or None,
    )
    await _finish_ledger_write(session, actor, "stock_count", row)
    return (await _stock_entries(session, StockCount.id == row.id))[0]


def _effective_manifests(unit_id: int, manifest_no: str) -> Select[Manifest]:
    return select(Manifest).where(
        Manifest.unit_id == unit_id, Manifest.manifest_no == manifest_no, effective(Manifest)
    )


async def add_manifest(
    session: AsyncSession, actor: Principal, unit_id: int, data: schemas.ManifestIn
) -> schemas.LedgerEntryOut:
    unit = await _smelter_for_write(session, actor, unit_id, LEDGER_WRITE_ROLES)
    shipped_at = _aware("shipped_at", data.shipped_at)
    plate = _text("vehicle_plate", data.vehicle_plate)
    note = _text("note", data.note)
    if not _id_ok(data.carrier_id) or await session.get(Carrier, data.carrier_id) is None:
        raise field_error("carrier_id", "运输单位不存在", "unknown_carrier")
    if not _id_ok(data.facility_id) or await session.get(DisposalFacility, data.facility_id) is None:
        raise field_error("facility_id", "处置单位不存在", "unknown_facility")
    await _superseded(session, Manifest, data.supersedes_id, unit.id)
    duplicate = _effective_manifests(unit.id, data.manifest_no)
    if data.supersedes_id is not None:
        duplicate = duplicate.where(Manifest.id != data.supersedes_id)
    if (await session.scalars(duplicate.limit(1))).first() is not None:
        raise Conflict(
            "联单编号已登记",
            code="duplicate_manifest_no",
            details=[{"field": "manifest_no", "code": "duplicate", "message": "联单编号已登记"}],
        )
    row = Manifest(
        unit_id=unit.id,
        manifest_no=data.manifest_no,
        shipped_at=shipped_at,
        shipped_t=data.shipped_t,
        carrier_id=data.carrier_id,
        vehicle_plate=plate,
        facility_id=data.facility_id,
        note=note,
        supersedes_id=data.supersedes_id,
        entered_by=actor.user_id or None,
    )
    await _finish_ledger_write(session, actor, "manifest", row)
    return (await _manifest_entries(session, Manifest.id == row.id))[0]


async def add_receipt(
    session: AsyncSession, actor: Principal, unit_id: int, manifest_no: str, data: schemas.ReceiptIn
) -> schemas.LedgerEntryOut:
    """A facility's weighbridge confirmation of an effective manifest (one per manifest)."""
    unit = await _smelter_for_write(session, actor, unit_id, RECEIPT_WRITE_ROLES)
    manifest = (await session.scalars(_effective_manifests(unit.id, manifest_no).limit(1))).first()
    if manifest is None:
        raise NotFound("联单不存在")
    received_at = _aware("received_at", data.received_at)
    if received_at < manifest.shipped_at:
        raise field_error("received_at", "签收时间不能早于发运时间", "before_shipment")
    note = _text("note", data.note)
    old = await _superseded(session, ManifestReceipt, data.supersedes_id, unit.id)
    if old is not None and old.manifest_no != manifest_no:
        raise field_error("supersedes_id", "要更正的签收记录不属于该联单", "manifest_mismatch")
    if old is None:
        confirmed = await session.scalar(
            select(ManifestReceipt.id).where(
                ManifestReceipt.unit_id == unit.id,
                ManifestReceipt.manifest_no == manifest_no,
                effective(ManifestReceipt),
            )
        )
        if confirmed is not None:
            raise Conflict(
                "该联单已签收；如需更正，请在 supersedes_id 中注明原签收记录",
                code="already_confirmed",
                details=[{"field": "supersedes_id", "code": "required", "message": "更正须注明原签收记录"}],
            )
    row = ManifestReceipt(
        unit_id=unit.id,
        manifest_no=manifest_no,
        received_at=received_at,
        received_t=data.received_t,
        note=note,
        supersedes_id=data.supersedes_id,
        entered_by=actor.user_id or None,
    )
    await _finish_ledger_write(session, actor, "receipt", row)
    return (await _receipt_entries(session, ManifestReceipt.id == row.id))[0]


# --- balance -----------------------------------------------------------------------------------------


async def balance_board(
    session: AsyncSession,
    actor: Principal,
    *,
    period: str,
    station_id: int | None = None,
    status: schemas.BalanceStatus | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[schemas.BalanceRow], int]:
    """The mass balance of every smelter in scope for a month, by name."""
    parse_period(period)
    ids = smelter_ids(actor.scope)
    if station_id is not None:
        ids = ids.where(Unit.station_id == station_id)
    rows = await compute_balance(session, ids, period)
    if status is not None:
        rows = [r for r in rows if r.status == status]
    rows.sort(key=lambda r: (r.unit_name, r.unit_id))
    return rows[offset : offset + limit], len(rows)


async def balance_trend(
    session: AsyncSession, actor: Principal, unit_id: int, months: int, until: str | None = None
) -> list[schemas.BalanceRow]:
    """A smelter's balance for ``months`` months up to ``until`` (default: this month), oldest first."""
    unit = await _load_smelter(session, actor, unit_id)
    last = parse_period(until or current_period()).period
    periods = [shift_period(last, -back) for back in range(months - 1, -1, -1)]
    parse_period(periods[0])
    return await balance_series(session, unit.id, periods)


# --- alerts ------------------------------------------------------------------------------------------


def alert_clause(actor: Principal) -> ColumnElement[bool]:
    """Unit alerts by unit scope; facility alerts (no unit) for the bureau and station officers."""
    if actor.scope.is_all:
        return true()
    units = EnvAlert.unit_id.in_(visible_unit_ids(actor.scope))
    if actor.has_role(*FACILITY_ALERT_ROLES) and actor.scope.kind is ScopeKind.STATIONS:
        return or_(units, EnvAlert.unit_id.is_(None))
    return units


@dataclass(frozen=True)
class AlertFilters:
    status: Literal["open", "resolved", "all"] = "open"
    kind: schemas.AlertKind | None = None
    unit_id: int | None = None
    facility_id: int | None = None
    period: str | None = None
    limit: int = 50
    offset: int = 0


def _alert_out(alert: EnvAlert, unit_name: str | None) -> schemas.AlertOut:
    return schemas.AlertOut(
        id=alert.id,
        unit_id=alert.unit_id,
        unit_name=unit_name,
        facility_id=alert.facility_id,
        kind=alert.kind,  # written by the checks from AlertKind
        severity=alert.severity,
        period=alert.period,
        message=alert.message,
        evidence=alert.evidence,
        status=alert.status,
        created_at=alert.created_at,
    )


async def list_alerts(
    session: AsyncSession, actor: Principal, f: AlertFilters
) -> tuple[list[schemas.AlertOut], int]:
    where: list[ColumnElement[bool]] = [alert_clause(actor)]
    if f.status != "all":
        where.append(EnvAlert.status == f.status)
    if f.kind is not None:
        where.append(EnvAlert.kind == f.kind)
    if f.unit_id is not None:
        where.append(EnvAlert.unit_id == f.unit_id)
    if f.facility_id is not None:
        where.append(EnvAlert.facility_id == f.facility_id)
    if f.period is not None:
        where.append(EnvAlert.period == f.period)
    total = await session.scalar(select(func.count()).select_from(EnvAlert).where(*where)) or 0
    rows = await session.execute(
        select(EnvAlert, Unit.name)
        .outerjoin(Unit, Unit.id == EnvAlert.unit_id)
        .where(*where)
        .order_by(EnvAlert.created_at.desc(), EnvAlert.id.desc())
        .limit(f.limit)
        .offset(f.offset)
    )
    return [_alert_out(a, name) for a, name in rows.all()], total


async def get_alert(session: AsyncSession, actor: Principal, alert_id: int) -> schemas.AlertOut:
    row = None
    if _id_ok(alert_id):
        row = (
            await session.execute(
                select(EnvAlert, Unit.name)
                .outerjoin(Unit, Unit.id == EnvAlert.unit_id)
                .where(EnvAlert.id == alert_id, alert_clause(actor))
            )
        ).first()
    if row is None:
        raise NotFound("预警不存在")
    return _alert_out(row[0], row[1])


def report_dict(report: CheckReport) -> dict[str, Any]:
    """The check report as JSON-ready data."""
    data: dict[str, Any] = dataclasses.asdict(report)
    return data


async def run_all_checks(session: AsyncSession, actor: Principal) -> dict[str, Any]:
    """Run every check over every smelter and facility now (the bureau's command centre only)."""
    actor.require_role(Role.BUREAU_ADMIN)
    report = await run_checks(session, now=utcnow())
    result = report_dict(report)
    await audit.record_action(session, actor, "env.checks.run", "env_alert", None, result)
    await _commit(session, "检查与并发操作冲突，请重试")
    return result


# --- eco incidents, patrols and joint zones -----------------------------------------------------------


def _station_zone_clause(
    scope: Scope, station_col: ColumnElement[int] | Any, zone_col: ColumnElement[int | None] | Any
) -> ColumnElement[bool]:
    match scope.kind:
        case ScopeKind.ALL:
            return true()
        case ScopeKind.STATIONS:
            result: ColumnElement[bool] = station_col.in_(scope.station_ids)
            return result
        case ScopeKind.ZONE:
            result = zone_col.in_(scope.zone_ids)
            return result
        case _:
            return false()


def zone_clause(scope: Scope) -> ColumnElement[bool]:
    """The joint zones a scope may see: all, those its station hosts, or its own."""
    return _station_zone_clause(scope, JointZone.station_id, JointZone.id)


@dataclass(frozen=True)
class EcoFilters:
    kind: str | None = None
    station_id: int | None = None
    zone_id: int | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    limit: int = 50
    offset: int = 0


async def _locate(
    session: AsyncSession, actor: Principal, station_id: int, lat: float, lng: float
) -> int | None:
    """Check the station a record is filed under and return the joint zone of its location."""
    station = await session.get(Station, station_id) if _id_ok(station_id) else None
    in_scope = actor.scope.is_all or (
        actor.scope.kind is ScopeKind.STATIONS and station_id in actor.scope.station_ids
    )
    zones = await load_zones(session)
    if actor.scope.kind is ScopeKind.ZONE:
        own = [z for z in zones if z.id in actor.scope.zone_ids]
        zone_id = zone_containing(own, lat, lng)
        if zone_id is None:
            message = "位置不在您的联合区域内"
            raise ValidationFailed(
                message,
                code="outside_zone",
                details=[
                    {"field": "lat", "code": "outside_zone", "message": message},
                    {"field": "lng", "code": "outside_zone", "message": message},
                ],
            )
        host = next(z.station_id for z in own if z.id == zone_id)
        if station_id != host:
            raise field_error("station_id", "须为联合区域所属派出所", "station_mismatch")
        return zone_id
    if station is None or not in_scope:
        raise NotFound("派出所不存在或不在您的辖区内", details=[{"field": "station_id", "code": "not_found"}])
    return zone_containing(zones, lat, lng)


def _period_filters(
    col: Any, station_col: Any, zone_col: Any, actor: Principal, f: EcoFilters
) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = [_station_zone_clause(actor.scope, station_col, zone_col)]
    if f.station_id is not None:
        where.append(station_col == f.station_id)
    if f.zone_id is not None:
        where.append(zone_col == f.zone_id)
    if f.since is not None:
        where.append(col >= _aware("from", f.since, not_future=False))
    if f.until is not None:
        where.append(col < _aware("to", f.until, not_future=False))
    return where


async def _list_located(
    session: AsyncSession, actor: Principal, model: Any, at: Any, f: EcoFilters
) -> tuple[list[Any], int]:
    """Eco incidents and patrols: the same scope, filters and order, newest first."""
    where = _period_filters(at, model.station_id, model.zone_id, actor, f)
    if f.kind is not None:
        where.append(model.kind == f.kind)
    total = await session.scalar(select(func.count()).select_from(model).where(*where)) or 0
    rows = await session.scalars(
        select(model).where(*where).order_by(at.desc(), model.id.desc()).limit(f.limit).offset(f.offset)
    )
    return list(rows), total


async def _get_located(session: AsyncSession, actor: Principal, model: Any, row_id: int, missing: str) -> Any:
    row = None
    if _id_ok(row_id):
        row = await session.scalar(
            select(model).where(
                model.id == row_id, _station_zone_clause(actor.scope, model.station_id, model.zone_id)
            )
        )
    if row is None:
        raise NotFound(missing)
    return row


async def list_eco_incidents(
    session: AsyncSession, actor: Principal, f: EcoFilters
) -> tuple[list[schemas.EcoIncidentOut], int]:
    rows, total = await _list_located(session, actor, EcoIncident, EcoIncident.occurred_at, f)
    return [schemas.EcoIncidentOut.model_validate(r) for r in rows], total


async def get_eco_incident(
    session: AsyncSession, actor: Principal, incident_id: int
) -> schemas.EcoIncidentOut:
    row = await _get_located(session, actor, EcoIncident, incident_id, "生态警情不存在")
    return schemas.EcoIncidentOut.model_validate(row)


async def create_eco_incident(
    session: AsyncSession, actor: Principal, data: schemas.EcoIncidentIn
) -> schemas.EcoIncidentOut:
    actor.require_role(*ECO_WRITE_ROLES)
    occurred_at = _aware("occurred_at", data.occurred_at)
    description = _text("description", data.description)
    zone_id = await _locate(session, actor, data.station_id, data.lat, data.lng)
    row = EcoIncident(
        kind=data.kind,
        occurred_at=occurred_at,
        lat=data.lat,
        lng=data.lng,
        station_id=data.station_id,
        zone_id=zone_id,
        description=description,
        source="direct",
        status="open",
        reported_by=actor.user_id or None,
    )
    session.add(row)
    await session.flush()
    await audit.record_action(
        session,
        actor,
        "env.eco_incident.create",
        "env_eco_incident",
        row.id,
        {**data.model_dump(mode="json"), "occurred_at": occurred_at.isoformat(), "zone_id": zone_id},
    )
    out = schemas.EcoIncidentOut.model_validate(row)
    await session.commit()
    return out


async def list_patrols(
    session: AsyncSession, actor: Principal, f: EcoFilters
) -> tuple[list[schemas.PatrolOut], int]:
    rows, total = await _list_located(session, actor, EcoPatrol, EcoPatrol.started_at, f)
    return [schemas.PatrolOut.model_validate(r) for r in rows], total


async def get_patrol(session: AsyncSession, actor: Principal, patrol_id: int) -> schemas.PatrolOut:
    row = await _get_located(session, actor, EcoPatrol, patrol_id, "巡查记录不存在")
    return schemas.PatrolOut.model_validate(row)


async def create_patrol(session: AsyncSession, actor: Principal, data: schemas.PatrolIn) -> schemas.PatrolOut:
    actor.require_role(*ECO_WRITE_ROLES)
    started_at = _aware("started_at", data.started_at)
    ended_at = None if data.ended_at is None else _aware("ended_at", data.ended_at)
    if ended_at is not None and ended_at < started_at:
        raise field_error("ended_at", "结束时间不能早于开始时间", "before_start")
    officers = _text("officers", data.officers)
    note = _text("note", data.note)
    zone_id = await _locate(session, actor, data.station_id, data.lat, data.lng)
    row = EcoPatrol(
        kind=data.kind,
        started_at=started_at,
        ended_at=ended_at,
        lat=data.lat,
        lng=data.lng,
        station_id=data.station_id,
        zone_id=zone_id,
        people_count=data.people_count,
        officers=officers,
        note=note,
        recorded_by=actor.user_id or None,
    )
    session.add(row)
    await session.flush()
    await audit.record_action(
        session,
        actor,
        "env.patrol.create",
        "env_eco_patrol",
        row.id,
        {
            **data.model_dump(mode="json"),
            "started_at": started_at.isoformat(),
            "ended_at": None if ended_at is None else ended_at.isoformat(),
            "zone_id": zone_id,
        },
    )
    out = schemas.PatrolOut.model_validate(row)
    await session.commit()
    return out


def _zone_out(zone: JointZone) -> schemas.ZoneOut:
    return schemas.ZoneOut(
        id=zone.id,
        code=zone.code,
        name=zone.name,
        partner_agency=zone.partner_agency,
        station_id=zone.station_id,
        polygon=zone.polygon,
        area_km2=round(polygon_area_km2([(p[0], p[1]) for p in zone.polygon]), 3),
    )


async def list_zones(
    session: AsyncSession, actor: Principal, *, limit: int = 50, offset: int = 0
) -> tuple[list[schemas.ZoneOut], int]:
    where = zone_clause(actor.scope)
    total = await session.scalar(select(func.count()).select_from(JointZone).where(where)) or 0
    rows = await session.scalars(
        select(JointZone).where(where).order_by(JointZone.id).limit(limit).offset(offset)
    )
    return [_zone_out(z) for z in rows], total


async def get_zone(session: AsyncSession, actor: Principal, zone_id: int) -> schemas.ZoneOut:
    row = None
    if _id_ok(zone_id):
        row = await session.scalar(select(JointZone).where(JointZone.id == zone_id, zone_clause(actor.scope)))
    if row is None:
        raise NotFound("联合区域不存在")
    return _zone_out(row)
