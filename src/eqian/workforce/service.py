"""Workforce rules: hires, departures, residence registration, reveal and compliance.

Workers are seen through their unit's scope (``organizations.service.visible_unit_ids``), except
that a mediator's team and a partner agency's joint zone give no access to workers at all. Every
write is audited in its own transaction with the ID number and phone masked.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Select, and_, case, false, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from eqian.core import audit
from eqian.core.accounts import Role
from eqian.core.db import utcnow
from eqian.core.errors import Conflict, NotFound, field_error
from eqian.core.ids import mask_mobile, mask_resident_id
from eqian.core.permissions import REVEAL_ROLES, Principal, Scope, ScopeKind
from eqian.organizations.models import Station, Unit
from eqian.organizations.service import visible_unit_ids
from eqian.workforce import schemas
from eqian.workforce.models import Employment, Person, Residence

LOCAL_TZ = ZoneInfo("Asia/Shanghai")
WRITE_ROLES = (Role.BUREAU_ADMIN, Role.STATION_OFFICER, Role.LIAISON_OFFICER, Role.UNIT_SECURITY)
# Scopes that reach units for other purposes but never their workers.
_NO_WORKERS = frozenset({ScopeKind.TEAM, ScopeKind.ZONE, ScopeKind.NONE})
DEFAULT_WINDOW_DAYS = 30  # 居住登记: within 30 days of arrival
ACTIVE_ELSEWHERE = "仍在其他单位在职"


def registration_window_days() -> int:
    """The legal registration window in days (``EQIAN_WORKFORCE_REGISTRATION_DAYS``, default 30)."""
    raw = os.environ.get("EQIAN_WORKFORCE_REGISTRATION_DAYS", "")
    return int(raw) if raw.isdigit() and 0 < int(raw) <= 365 else DEFAULT_WINDOW_DAYS


def local_today() -> dt.date:
    return dt.datetime.now(LOCAL_TZ).date()


# --- scope --------------------------------------------------------------------------------------


def worker_unit_ids(scope: Scope) -> Select[Any]:
    """The units whose workers a scope may see, as a subquery of unit ids."""
    if scope.kind in _NO_WORKERS:
        return select(Unit.id).where(false())
    return visible_unit_ids(scope)


def worker_clause(scope: Scope) -> ColumnElement[bool]:
    return Employment.unit_id.in_(worker_unit_ids(scope))


async def load_unit(session: AsyncSession, actor: Principal, unit_id: int) -> Unit:
    unit = await session.scalar(
        select(Unit).where(Unit.id == unit_id, Unit.id.in_(worker_unit_ids(actor.scope)))
    )
    if unit is None:
        raise NotFound("单位不存在")
    return unit


# --- reading ------------------------------------------------------------------------------------


def _residence_out(res: Residence | None) -> schemas.ResidenceOut:
    if res is None:
        return schemas.ResidenceOut(
            status="unregistered", registered_on=None, permit_no=None, permit_expires_on=None
        )
    return schemas.ResidenceOut(
        status=res.status,
        registered_on=res.registered_on,
        permit_no=res.permit_no,
        permit_expires_on=res.permit_expires_on,
    )


def _worker_out(emp: Employment, person: Person, res: Residence | None, unit_name: str) -> schemas.WorkerOut:
    return schemas.WorkerOut(
        id=emp.id,
        person_id=person.id,
        unit_id=emp.unit_id,
        unit_name=unit_name,
        name=person.name,
        id_number_masked=mask_resident_id(person.id_number),
        phone_masked=mask_mobile(person.phone) or "",
        hired_on=emp.hired_on,
        left_on=emp.left_on,
        dormitory=emp.dormitory,
        position=emp.position,
        residence=_residence_out(res),
        registration_due_on=emp.hired_on + dt.timedelta(days=registration_window_days()),
    )


def _worker_query() -> Select[Employment, Person, Residence, str]:
    return (
        select(Employment, Person, Residence, Unit.name)
        .join(Person, Person.id == Employment.person_id)
        .join(Unit, Unit.id == Employment.unit_id)
        .outerjoin(Residence, Residence.person_id == Employment.person_id)
    )


@dataclass(frozen=True)
class WorkerFilters:
    unit_id: int | None = None
    station_id: int | None = None
    active: bool | None = None
    status: str | None = None
    q: str | None = None
    limit: int = 50
    offset: int = 0


def _filtered(scope: Scope, f: WorkerFilters) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = [worker_clause(scope)]
    if f.unit_id is not None:
        where.append(Employment.unit_id == f.unit_id)
    if f.station_id is not None:
        where.append(Unit.station_id == f.station_id)
    if f.active is True:
        where.append(Employment.left_on.is_(None))
    elif f.active is False:
        where.append(Employment.left_on.is_not(None))
    if f.status == "unregistered":
        where.append(or_(Residence.status.is_(None), Residence.status == "unregistered"))
    elif f.status is not None:
        where.append(Residence.status == f.status)
    if f.q:
        where.append(Person.name.contains(f.q, autoescape=True))
    return where


async def list_workers(
    session: AsyncSession, actor: Principal, f: WorkerFilters
) -> tuple[list[schemas.WorkerOut], int]:
    where = _filtered(actor.scope, f)
    count_q = (
        select(func.count())
        .select_from(Employment)
        .join(Person, Person.id == Employment.person_id)
        .join(Unit, Unit.id == Employment.unit_id)
        .outerjoin(Residence, Residence.person_id == Employment.person_id)
        .where(*where)
    )
    total = int(await session.scalar(count_q) or 0)
    rows = await session.execute(
        _worker_query()
        .where(*where)
        .order_by(Employment.left_on.is_not(None), Employment.hired_on.desc(), Employment.id.desc())
        .limit(f.limit)
        .offset(f.offset)
    )
    return [_worker_out(*row) for row in rows.all()], total


async def _load_worker(
    session: AsyncSession, actor: Principal, employment_id: int
) -> tuple[Employment, Person, Residence | None, str]:
    row = (
        await session.execute(
            _worker_query().where(Employment.id == employment_id, worker_clause(actor.scope))
        )
    ).first()
    if row is None:
        raise NotFound("员工记录不存在")
    return row[0], row[1], row[2], row[3]


async def get_worker(session: AsyncSession, actor: Principal, employment_id: int) -> schemas.WorkerOut:
    return _worker_out(*await _load_worker(session, actor, employment_id))


async def _load_person(
    session: AsyncSession, actor: Principal, person_id: int, *, active: bool = False
) -> Person:
    """A person is visible when one of their employments (an active one, for writes) is."""
    cond = [Employment.person_id == person_id, worker_clause(actor.scope)]
    if active:
        cond.append(Employment.left_on.is_(None))
    person = await session.scalar(
        select(Person).where(Person.id == person_id, select(Employment.id).where(*cond).exists())
    )
    if person is None:
        raise NotFound("人员不存在")
    return person


async def get_person(session: AsyncSession, actor: Principal, person_id: int) -> schemas.PersonOut:
    person = await _load_person(session, actor, person_id)
    rows = await session.execute(
        _worker_query()
        .where(Employment.person_id == person.id, worker_clause(actor.scope))
        .order_by(Employment.hired_on.desc(), Employment.id.desc())
    )
    employments = [_worker_out(*row) for row in rows.all()]
    res = await session.get(Residence, person.id)
    return schemas.PersonOut(
        id=person.id,
        name=person.name,
        id_number_masked=mask_resident_id(person.id_number),
        phone_masked=mask_mobile(person.phone) or "",
        birth_date_year=person.birth_date.year,
        home_region=person.home_region,
        residence=_residence_out(res),
        employments=employments,
    )


async def reveal_person(session: AsyncSession, actor: Principal, person_id: int) -> schemas.RevealedPerson:
    """The one path to an unmasked ID number and phone: allowed roles only, always audited."""
    person = await _load_person(session, actor, person_id)
    actor.require_role(*REVEAL_ROLES)
    await audit.record_action(
        session,
        actor,
        "personal_data.reveal",
        "person",
        entity_id=person.id,
        changes={"fields": ["id_number", "phone"], "id_number": mask_resident_id(person.id_number)},
    )
    await session.commit()
    return schemas.RevealedPerson(
        id=person.id, name=person.name, id_number=person.id_number, phone=person.phone
    )


# --- writing ------------------------------------------------------------------------------------


def check_hire_date(hired_on: dt.date, today: dt.date) -> str | None:
    if hired_on > today + dt.timedelta(days=31):
        return "入职日期不能晚于一个月之后"
    if hired_on < dt.date(1990, 1, 1):
        return "入职日期过早"
    return None


async def hire(session: AsyncSession, actor: Principal, data: schemas.HireIn) -> schemas.WorkerOut:
    unit = await load_unit(session, actor, data.unit_id)
    actor.require_role(*WRITE_ROLES)
    if (problem := check_hire_date(data.hired_on, local_today())) is not None:
        raise field_error("hired_on", problem)
    person = await session.scalar(select(Person).where(Person.id_number == data.id_number))
    if person is None:
        person = Person(
            id_number=data.id_number,
            name=data.name,
            phone=data.phone,
            birth_date=dt.date(
                int(data.id_number[6:10]), int(data.id_number[10:12]), int(data.id_number[12:14])
            ),
            home_region=data.id_number[:6],
        )
        session.add(person)
        await session.flush()
        session.add(Residence(person_id=person.id, status="unregistered"))
    else:
        active = await session.scalar(
            select(Employment.unit_id).where(Employment.person_id == person.id, Employment.left_on.is_(None))
        )
        if active is not None:
            # Never name the other unit: it may lie outside the caller's jurisdiction.
            message = "该员工已在本单位在职" if active == unit.id else ACTIVE_ELSEWHERE
            raise Conflict(
                message, code="already_employed", details=[{"field": "id_number", "message": message}]
            )
        person.name, person.phone = data.name, data.phone
    emp = Employment(
        person_id=person.id,
        unit_id=unit.id,
        hired_on=data.hired_on,
        dormitory=data.dormitory,
        position=data.position,
    )
    session.add(emp)
    await session.flush()
    await audit.record_action(
        session,
        actor,
        "worker.hire",
        "employment",
        entity_id=emp.id,
        changes={
            "unit_id": unit.id,
            "person_id": person.id,
            "id_number": mask_resident_id(data.id_number),
            "phone": mask_mobile(data.phone),
            "hired_on": data.hired_on.isoformat(),
        },
    )
    await session.commit()
    return await get_worker(session, actor, emp.id)


async def depart(
    session: AsyncSession, actor: Principal, employment_id: int, data: schemas.DepartureIn
) -> schemas.WorkerOut:
    emp, person, _res, _name = await _load_worker(session, actor, employment_id)
    actor.require_role(*WRITE_ROLES)
    if emp.left_on is not None:
        raise Conflict("该员工已办理离职", code="already_left")
    if data.left_on < emp.hired_on:
        raise field_error("left_on", "离职日期不能早于入职日期")
    if data.left_on > local_today() + dt.timedelta(days=31):
        raise field_error("left_on", "离职日期不能晚于一个月之后")
    emp.left_on = data.left_on
    await audit.record_action(
        session,
        actor,
        "worker.depart",
        "employment",
        entity_id=emp.id,
        changes={"unit_id": emp.unit_id, "person_id": person.id, "left_on": data.left_on.isoformat()},
    )
    await session.commit()
    return await get_worker(session, actor, emp.id)


def _check_residence(data: schemas.ResidenceIn) -> None:
    if data.status != "unregistered" and data.registered_on is None:
        raise field_error("registered_on", "请填写居住登记日期", code="missing")
    if data.registered_on is not None and data.registered_on > local_today():
        raise field_error("registered_on", "登记日期不能晚于今天")
    if data.status == "permit_issued":
        if not data.permit_no:
            raise field_error("permit_no", "请填写居住证号码", code="missing")
        if data.permit_expires_on is None:
            raise field_error("permit_expires_on", "请填写居住证有效期", code="missing")


async def update_residence(
    session: AsyncSession, actor: Principal, person_id: int, data: schemas.ResidenceIn
) -> schemas.ResidenceOut:
    """Record registration or a permit; only where the person is currently employed in scope."""
    person = await _load_person(session, actor, person_id, active=True)
    actor.require_role(*WRITE_ROLES)
    _check_residence(data)
    res = await session.get(Residence, person.id)
    if res is None:
        res = Residence(person_id=person.id)
        session.add(res)
    old = _residence_out(res).model_dump(mode="json") if res.status else None
    if data.status == "unregistered":
        res.status, res.registered_on, res.permit_no, res.permit_expires_on = "unregistered", None, None, None
    else:
        res.status, res.registered_on = data.status, data.registered_on
        keep_permit = data.status == "permit_issued"
        res.permit_no = data.permit_no if keep_permit else None
        res.permit_expires_on = data.permit_expires_on if keep_permit else None
    res.updated_at = utcnow()
    new = _residence_out(res).model_dump(mode="json")
    await audit.record_action(
        session, actor, "worker.residence", "person", entity_id=person.id, changes={"old": old, "new": new}
    )
    await session.commit()
    return _residence_out(res)


# --- compliance ---------------------------------------------------------------------------------


def _days_between(session: AsyncSession, start: Any, end: Any) -> ColumnElement[Any]:
    """``end − start`` in days, on either backend."""
    if session.get_bind().dialect.name == "postgresql":
        return end - start  # type: ignore[no-any-return]
    return func.julianday(end) - func.julianday(start)


@dataclass(frozen=True)
class ComplianceQuery:
    date_from: dt.date
    date_to: dt.date
    unit_id: int | None = None
    station_id: int | None = None
    window_days: int | None = None
    as_of: dt.date | None = None


def default_period(today: dt.date) -> tuple[dt.date, dt.date]:
    """The last 12 months of hires, today included."""
    return today - dt.timedelta(days=365), today


def _rate(hires: int, ok: int, pending: int) -> float | None:
    due = hires - pending
    return round(ok / due, 4) if due > 0 else None


async def compliance(
    session: AsyncSession, actor: Principal, q: ComplianceQuery, *, by: str = "unit"
) -> schemas.ComplianceReport:
    """Registered within the window ÷ hires whose window has ended, per unit or per station.

    A hire counts when ``date_from <= hired_on <= date_to``. It is compliant when the person's
    registration date is no later than ``hired_on + window`` (a registration that predates the
    hire counts: the person was registered when they arrived). Hires still inside their window
    and not yet registered are *pending* and counted neither way.
    """
    if q.date_to < q.date_from:
        raise field_error("to", "结束日期不能早于开始日期")
    window = q.window_days or registration_window_days()
    as_of = q.as_of or local_today()
    cutoff = as_of - dt.timedelta(days=window)
    in_window = and_(
        Residence.registered_on.is_not(None),
        _days_between(session, Employment.hired_on, Residence.registered_on) <= window,
    )
    ok = func.sum(case((in_window, 1), else_=0))
    pending = func.sum(case((and_(~in_window, Employment.hired_on > cutoff), 1), else_=0))
    if by == "station":
        key, name = Station.id, Station.name
    else:
        key, name = Unit.id, Unit.name
    stmt = (
        select(key, name, func.count(Employment.id), ok, pending)
        .select_from(Employment)
        .join(Unit, Unit.id == Employment.unit_id)
        .join(Station, Station.id == Unit.station_id)
        .outerjoin(Residence, Residence.person_id == Employment.person_id)
        .where(
            worker_clause(actor.scope), Employment.hired_on >= q.date_from, Employment.hired_on <= q.date_to
        )
        .group_by(key, name)
        .order_by(name, key)
    )
    if q.unit_id is not None:
        stmt = stmt.where(Employment.unit_id == q.unit_id)
    if q.station_id is not None:
        stmt = stmt.where(Unit.station_id == q.station_id)
    rows = []
    totals = [0, 0, 0]
    for kid, kname, hires, good, pend in (await session.execute(stmt)).all():
        h, g, p = int(hires), int(good or 0), int(pend or 0)
        totals = [totals[0] + h, totals[1] + g, totals[2] + p]
        rows.append(
            schemas.ComplianceRow(
                key_id=kid, name=kname, hires=h, registered_in_window=g, pending=p, rate=_rate(h, g, p)
            )
        )
    total = schemas.ComplianceRow(
        key_id=0,
        name="合计",
        hires=totals[0],
        registered_in_window=totals[1],
        pending=totals[2],
        rate=_rate(*totals),
    )
    return schemas.ComplianceReport(
        date_from=q.date_from, date_to=q.date_to, window_days=window, rows=rows, total=total
    )


async def units_for_picker(
    session: AsyncSession, actor: Principal, q: str | None, limit: int = 200
) -> list[tuple[int, str, str, int]]:
    """Units whose workers the actor sees: (id, name, station name, active workers), by name."""
    active = (
        select(Employment.unit_id, func.count().label("n"))
        .where(Employment.left_on.is_(None))
        .group_by(Employment.unit_id)
        .subquery()
    )
    stmt = (
        select(Unit.id, Unit.name, Station.name, func.coalesce(active.c.n, 0))
        .join(Station, Station.id == Unit.station_id)
        .outerjoin(active, active.c.unit_id == Unit.id)
        .where(Unit.id.in_(worker_unit_ids(actor.scope)))
        .order_by(func.coalesce(active.c.n, 0).desc(), Unit.name)
        .limit(limit)
    )
    if q:
        stmt = stmt.where(Unit.name.contains(q, autoescape=True))
    return [(int(a), str(b), str(c), int(d)) for a, b, c, d in (await session.execute(stmt)).all()]
