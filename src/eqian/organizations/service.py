"""Rules of the organization registry. Every read and write is scoped to the actor's jurisdiction."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, false, func, select, true, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from eqian.core import audit
from eqian.core.accounts import Role, User
from eqian.core.errors import Conflict, NotFound, ValidationFailed, field_error
from eqian.core.geo import point_in_polygon
from eqian.core.ids import mask_mobile
from eqian.core.permissions import REVEAL_ROLES, Principal, Scope, ScopeKind
from eqian.organizations import schemas
from eqian.organizations.models import (
    Contact,
    JointZone,
    LiaisonAssignment,
    ServicePoint,
    Station,
    Unit,
    UnitCategory,
)

WRITE_ROLES = (Role.BUREAU_ADMIN, Role.STATION_OFFICER)
NULLABLE_FIELDS = frozenset({"service_point_id", "lat", "lng"})


# --- scope -------------------------------------------------------------------------------------


def unit_clause(scope: Scope) -> ColumnElement[bool]:
    """The units a scope may see, as a WHERE clause on ``Unit``."""
    match scope.kind:
        case ScopeKind.ALL:
            return true()
        case ScopeKind.STATIONS:
            return Unit.station_id.in_(scope.station_ids)
        case ScopeKind.SERVICE_POINTS:
            return Unit.service_point_id.in_(scope.service_point_ids)
        case ScopeKind.UNITS:
            return Unit.id.in_(scope.unit_ids)
        case ScopeKind.ZONE:
            return Unit.joint_zone_id.in_(scope.zone_ids)
        case ScopeKind.LIAISON:
            return Unit.id.in_(
                select(LiaisonAssignment.unit_id).where(LiaisonAssignment.officer_id == scope.liaison_user_id)
            )
        case _:
            return false()


def visible_unit_ids(scope: Scope) -> Select[int]:
    """For other domains: a subquery of the unit ids this scope may see."""
    return select(Unit.id).where(unit_clause(scope))


def affairs_clause(scope: Scope) -> ColumnElement[bool]:
    """The units whose own affairs (hazards and inspections, requests, messages and instructions,
    the safety index) a scope may see: ``unit_clause``, except that a partner agency's joint zone
    covers the zone's units in the registry, its eco incidents and patrols, and nothing of the
    enterprises' own affairs."""
    return false() if scope.kind is ScopeKind.ZONE else unit_clause(scope)


def affairs_unit_ids(scope: Scope) -> Select[int]:
    return select(Unit.id).where(affairs_clause(scope))


def station_clause(scope: Scope) -> ColumnElement[bool]:
    if scope.kind is ScopeKind.ALL:
        return true()
    if scope.kind is ScopeKind.STATIONS:
        return Station.id.in_(scope.station_ids)
    return Station.id.in_(select(Unit.station_id).where(unit_clause(scope)))


def service_point_clause(scope: Scope) -> ColumnElement[bool]:
    if scope.kind is ScopeKind.ALL:
        return true()
    if scope.kind is ScopeKind.STATIONS:
        return ServicePoint.station_id.in_(scope.station_ids)
    if scope.kind is ScopeKind.SERVICE_POINTS:
        return ServicePoint.id.in_(scope.service_point_ids)
    return ServicePoint.id.in_(select(Unit.service_point_id).where(unit_clause(scope)))


def _require_station_in_scope(actor: Principal, station_id: int) -> None:
    if actor.scope.kind is ScopeKind.ALL:
        return
    if actor.scope.kind is ScopeKind.STATIONS and station_id in actor.scope.station_ids:
        return
    raise NotFound("派出所不存在或不在您的辖区内", details=[{"field": "station_id", "code": "not_found"}])


# --- joint zones ----------------------------------------------------------------------------


async def load_zones(session: AsyncSession) -> list[JointZone]:
    return list(await session.scalars(select(JointZone).order_by(JointZone.id)))


def zone_containing(zones: list[JointZone], lat: float | None, lng: float | None) -> int | None:
    if lat is None or lng is None:
        return None
    for zone in zones:
        if point_in_polygon((lat, lng), [(p[0], p[1]) for p in zone.polygon]):
            return zone.id
    return None


async def refresh_unit_zones(session: AsyncSession, credit_codes: list[str] | None = None) -> int:
    """Re-derive ``joint_zone_id`` from coordinates (after an import, or when a zone changes)."""
    zones = await load_zones(session)
    query = select(Unit.id, Unit.lat, Unit.lng, Unit.joint_zone_id)
    if credit_codes is not None:
        query = query.where(Unit.credit_code.in_(credit_codes))
    changes = [
        {"id": uid, "joint_zone_id": zone}
        for uid, lat, lng, current in (await session.execute(query)).all()
        if (zone := zone_containing(zones, lat, lng)) != current
    ]
    if changes:
        await session.execute(update(Unit), changes)
    return len(changes)


# --- stations and service points ---------------------------------------------------------------


async def list_stations(session: AsyncSession, actor: Principal) -> list[schemas.StationOut]:
    unit_counts = (
        select(Unit.station_id, func.count().label("n"))
        .where(unit_clause(actor.scope))
        .group_by(Unit.station_id)
    ).subquery()
    sp_counts = (
        select(ServicePoint.station_id, func.count().label("n"))
        .where(service_point_clause(actor.scope))
        .group_by(ServicePoint.station_id)
    ).subquery()
    rows = await session.execute(
        select(Station, func.coalesce(unit_counts.c.n, 0), func.coalesce(sp_counts.c.n, 0))
        .outerjoin(unit_counts, unit_counts.c.station_id == Station.id)
        .outerjoin(sp_counts, sp_counts.c.station_id == Station.id)
        .where(station_clause(actor.scope))
        .order_by(Station.id)
    )
    return [
        schemas.StationOut.model_validate(st).model_copy(update={"unit_count": n, "service_point_count": m})
        for st, n, m in rows.all()
    ]


async def get_station(session: AsyncSession, actor: Principal, station_id: int) -> schemas.StationOut:
    for station in await list_stations(session, actor):
        if station.id == station_id:
            return station
    raise NotFound("派出所不存在")


async def list_service_points(
    session: AsyncSession, actor: Principal, station_id: int | None = None
) -> list[schemas.ServicePointOut]:
    counts = (
        select(Unit.service_point_id, func.count().label("n"))
        .where(unit_clause(actor.scope))
        .group_by(Unit.service_point_id)
    ).subquery()
    query = (
        select(ServicePoint, func.coalesce(counts.c.n, 0))
        .outerjoin(counts, counts.c.service_point_id == ServicePoint.id)
        .where(service_point_clause(actor.scope))
        .order_by(ServicePoint.id)
    )
    if station_id is not None:
        query = query.where(ServicePoint.station_id == station_id)
    rows = await session.execute(query)
    return [
        schemas.ServicePointOut.model_validate(sp).model_copy(update={"unit_count": n})
        for sp, n in rows.all()
    ]


async def list_categories(session: AsyncSession) -> list[schemas.CategoryOut]:
    rows = await session.scalars(select(UnitCategory).order_by(UnitCategory.sort_order))
    return [schemas.CategoryOut.model_validate(c) for c in rows]


# --- units ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UnitFilters:
    station_id: int | None = None
    category: str | None = None
    service_point_id: int | None = None
    status: str | None = None
    above_scale: bool | None = None
    q: str | None = None
    sort: str = "name"
    limit: int = 50
    offset: int = 0


_SORTS: dict[str, Any] = {
    "name": Unit.name.asc(),
    "-name": Unit.name.desc(),
    "employee_count": Unit.employee_count.asc(),
    "-employee_count": Unit.employee_count.desc(),
    "created_at": Unit.created_at.asc(),
    "-created_at": Unit.created_at.desc(),
    "id": Unit.id.asc(),
    "-id": Unit.id.desc(),
}


def _filtered(scope: Scope, f: UnitFilters) -> list[ColumnElement[bool]]:
    where = [unit_clause(scope)]
    if f.station_id is not None:
        where.append(Unit.station_id == f.station_id)
    if f.category:
        where.append(Unit.category_code == f.category)
    if f.service_point_id is not None:
        where.append(Unit.service_point_id == f.service_point_id)
    if f.status:
        where.append(Unit.status == f.status)
    if f.above_scale is not None:
        where.append(Unit.above_scale == f.above_scale)
    if f.q:
        # LIKE metacharacters typed by a user are searched literally.
        needle = "%" + f.q.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        where.append(
            Unit.name.ilike(needle, escape="\\")
            | Unit.address.ilike(needle, escape="\\")
            | Unit.credit_code.ilike(needle, escape="\\")
        )
    return where


def _unit_row_query() -> Select[Unit, str, str, str]:
    sp = aliased(ServicePoint)
    return (
        select(
            Unit,
            UnitCategory.name_zh.label("category_name"),
            Station.name.label("station_name"),
            sp.name.label("service_point_name"),
        )
        .join(UnitCategory, UnitCategory.code == Unit.category_code)
        .join(Station, Station.id == Unit.station_id)
        .outerjoin(sp, sp.id == Unit.service_point_id)
    )


def _unit_out(unit: Unit, category_name: str, station_name: str, sp_name: str | None) -> schemas.UnitOut:
    return schemas.UnitOut(
        id=unit.id,
        name=unit.name,
        credit_code=unit.credit_code,
        category_code=unit.category_code,
        category_name=category_name,
        station_id=unit.station_id,
        station_name=station_name,
        service_point_id=unit.service_point_id,
        service_point_name=sp_name,
        address=unit.address,
        lat=unit.lat,
        lng=unit.lng,
        employee_count=unit.employee_count,
        above_scale=unit.above_scale,
        status=unit.status,
    )


async def list_units(
    session: AsyncSession, actor: Principal, f: UnitFilters
) -> tuple[list[schemas.UnitOut], int]:
    if f.q and "\x00" in f.q:
        raise field_error("q", "搜索内容不能包含空字符", "invalid_characters")
    if f.sort not in _SORTS:
        raise field_error("sort", f"不支持的排序字段: {f.sort}", "invalid_sort")
    where = _filtered(actor.scope, f)
    total = await session.scalar(select(func.count()).select_from(Unit).where(*where)) or 0
    rows = await session.execute(
        _unit_row_query().where(*where).order_by(_SORTS[f.sort], Unit.id).limit(f.limit).offset(f.offset)
    )
    return [_unit_out(*row) for row in rows.all()], total


async def _load_unit(session: AsyncSession, actor: Principal, unit_id: int) -> Unit:
    unit = await session.scalar(select(Unit).where(Unit.id == unit_id, unit_clause(actor.scope)))
    if unit is None:
        raise NotFound("单位不存在")
    return unit


async def get_unit(session: AsyncSession, actor: Principal, unit_id: int) -> schemas.UnitDetail:
    row = (
        await session.execute(_unit_row_query().where(Unit.id == unit_id, unit_clause(actor.scope)))
    ).first()
    if row is None:
        raise NotFound("单位不存在")
    unit = row[0]
    liaison = (
        await session.execute(
            select(User.id, User.display_name)
            .join(LiaisonAssignment, LiaisonAssignment.officer_id == User.id)
            .where(LiaisonAssignment.unit_id == unit.id)
        )
    ).first()
    contacts = await session.scalars(select(Contact).where(Contact.unit_id == unit.id).order_by(Contact.id))
    base = _unit_out(*row)
    return schemas.UnitDetail(
        **base.model_dump(),
        liaison_officer_id=liaison[0] if liaison else None,
        liaison_officer_name=liaison[1] if liaison else None,
        contacts=[_contact_out(c) for c in contacts],
        created_at=unit.created_at,
        updated_at=unit.updated_at,
    )


def _contact_out(contact: Contact) -> schemas.ContactOut:
    return schemas.ContactOut(
        id=contact.id,
        name=contact.name,
        role=contact.role,
        phone=mask_mobile(contact.phone) or "",
    )


async def _check_refs(
    session: AsyncSession,
    actor: Principal,
    *,
    category_code: str | None,
    station_id: int | None,
    service_point: tuple[int, int] | None,
) -> None:
    """Check references a write names; ``service_point`` is (service point id, its intended station)."""
    if category_code is not None and await session.get(UnitCategory, category_code) is None:
        raise field_error("category_code", f"未知的单位类别: {category_code}", "unknown_category")
    if station_id is not None:
        _require_station_in_scope(actor, station_id)
        if await session.get(Station, station_id) is None:
            raise NotFound("派出所不存在", details=[{"field": "station_id", "code": "not_found"}])
    if service_point is not None:
        sp = await session.get(ServicePoint, service_point[0])
        if sp is None or sp.station_id != service_point[1]:
            raise field_error("service_point_id", "服务点不存在或不属于该派出所", "service_point_mismatch")


async def _require_unique_credit_code(
    session: AsyncSession, code: str, *, exclude_id: int | None = None
) -> None:
    query = select(Unit.id).where(Unit.credit_code == code)
    if exclude_id is not None:
        query = query.where(Unit.id != exclude_id)
    if await session.scalar(query) is not None:
        raise ValidationFailed(
            "统一社会信用代码已登记",
            code="duplicate_credit_code",
            details=[{"field": "credit_code", "code": "duplicate", "message": "统一社会信用代码已登记"}],
        )


async def _commit_unit(session: AsyncSession) -> None:
    """Commit, turning a credit code registered by a concurrent request into a 409, not a 500."""
    try:
        await session.commit()
    except IntegrityError as exc:
        await session.rollback()
        raise Conflict(
            "统一社会信用代码已登记",
            code="duplicate_credit_code",
            details=[{"field": "credit_code", "code": "duplicate", "message": "统一社会信用代码已登记"}],
        ) from exc


async def create_unit(
    session: AsyncSession, actor: Principal, data: schemas.UnitCreate
) -> schemas.UnitDetail:
    actor.require_role(*WRITE_ROLES)
    await _check_refs(
        session,
        actor,
        category_code=data.category_code,
        station_id=data.station_id,
        service_point=None if data.service_point_id is None else (data.service_point_id, data.station_id),
    )
    await _require_unique_credit_code(session, data.credit_code)
    unit = Unit(**data.model_dump())
    unit.joint_zone_id = zone_containing(await load_zones(session), unit.lat, unit.lng)
    session.add(unit)
    await session.flush()
    await audit.record_action(
        session, actor, "unit.create", "unit", entity_id=unit.id, changes=data.model_dump()
    )
    await _commit_unit(session)
    return await get_unit(session, actor, unit.id)


async def update_unit(
    session: AsyncSession, actor: Principal, unit_id: int, data: schemas.UnitUpdate
) -> schemas.UnitDetail:
    unit = await _load_unit(session, actor, unit_id)
    actor.require_role(*WRITE_ROLES)
    given = data.model_dump(exclude_unset=True)
    for key, value in given.items():
        if value is None and key not in NULLABLE_FIELDS:
            raise field_error(key, "不能为空", "required")
    station_id = given.get("station_id", unit.station_id)
    if station_id != unit.station_id and "service_point_id" not in given:
        given["service_point_id"] = None  # a unit moved to another station leaves its old service point
    sp_id = given.get("service_point_id", unit.service_point_id)
    await _check_refs(
        session,
        actor,
        category_code=given.get("category_code"),
        station_id=given.get("station_id"),
        service_point=None if sp_id is None else (sp_id, station_id),
    )
    if "credit_code" in given:
        await _require_unique_credit_code(session, given["credit_code"], exclude_id=unit.id)
    changes = {k: [getattr(unit, k), v] for k, v in given.items() if getattr(unit, k) != v}
    for key, value in given.items():
        setattr(unit, key, value)
    if "lat" in given or "lng" in given:
        unit.joint_zone_id = zone_containing(await load_zones(session), unit.lat, unit.lng)
    if changes:
        await audit.record_action(session, actor, "unit.update", "unit", entity_id=unit.id, changes=changes)
    await _commit_unit(session)
    return await get_unit(session, actor, unit.id)


async def add_contact(
    session: AsyncSession, actor: Principal, unit_id: int, data: schemas.ContactCreate
) -> schemas.ContactOut:
    unit = await _load_unit(session, actor, unit_id)
    # A unit's own security head keeps its contact list current; officers may too.
    actor.require_role(*WRITE_ROLES, Role.LIAISON_OFFICER, Role.UNIT_SECURITY)
    contact = Contact(unit_id=unit.id, name=data.name, role=data.role, phone=data.phone)
    session.add(contact)
    await session.flush()
    await audit.record_action(
        session,
        actor,
        "contact.create",
        "contact",
        entity_id=contact.id,
        changes={"unit_id": unit.id, "name": data.name, "role": data.role, "phone": mask_mobile(data.phone)},
    )
    await session.commit()
    return _contact_out(contact)


async def reveal_contact(
    session: AsyncSession, actor: Principal, unit_id: int, contact_id: int
) -> schemas.RevealedContact:
    """The one path to an unmasked phone: allowed roles only, and always written to the audit log."""
    unit = await _load_unit(session, actor, unit_id)
    contact = await session.scalar(
        select(Contact).where(Contact.id == contact_id, Contact.unit_id == unit.id)
    )
    if contact is None:
        raise NotFound("联系人不存在")
    actor.require_role(*REVEAL_ROLES)
    await audit.record_action(
        session,
        actor,
        "personal_data.reveal",
        "contact",
        entity_id=contact.id,
        changes={"unit_id": unit.id, "fields": ["phone"]},
    )
    await session.commit()
    return schemas.RevealedContact(id=contact.id, name=contact.name, role=contact.role, phone=contact.phone)


async def assign_liaison(
    session: AsyncSession, actor: Principal, unit_id: int, data: schemas.LiaisonAssign
) -> schemas.UnitDetail:
    unit = await _load_unit(session, actor, unit_id)
    actor.require_role(*WRITE_ROLES)
    existing = await session.get(LiaisonAssignment, unit.id)
    old = existing.officer_id if existing else None
    if data.officer_id is not None:
        officer = await session.get(User, data.officer_id)
        if officer is None or officer.role != Role.LIAISON_OFFICER or not officer.is_active:
            raise field_error("officer_id", "不是有效的企业警长账号", "not_a_liaison_officer")
        if officer.station_id is not None and officer.station_id != unit.station_id:
            raise field_error("officer_id", "企业警长不属于该单位所在派出所", "station_mismatch")
    if existing is not None:
        await session.delete(existing)
        await session.flush()
    if data.officer_id is not None:
        session.add(LiaisonAssignment(unit_id=unit.id, officer_id=data.officer_id))
    if old != data.officer_id:
        await audit.record_action(
            session,
            actor,
            "unit.assign_liaison",
            "unit",
            entity_id=unit.id,
            changes={"officer_id": [old, data.officer_id]},
        )
    await session.commit()
    return await get_unit(session, actor, unit.id)


async def unit_counts_by_category(
    session: AsyncSession, actor: Principal, station_id: int
) -> list[tuple[str, str, int]]:
    """(code, Chinese name, count of visible units) for each category, zero counts included."""
    counts = (
        select(Unit.category_code, func.count().label("n"))
        .where(unit_clause(actor.scope), Unit.station_id == station_id)
        .group_by(Unit.category_code)
    ).subquery()
    rows = await session.execute(
        select(UnitCategory.code, UnitCategory.name_zh, func.coalesce(counts.c.n, 0))
        .outerjoin(counts, counts.c.category_code == UnitCategory.code)
        .order_by(UnitCategory.sort_order)
    )
    return [(code, name, int(n)) for code, name, n in rows.all()]
