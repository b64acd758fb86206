"""Rules of enterprise requests (涉企诉求): submission by a unit, routing to a department or the
unit's liaison officer, SLA by kind, reply, resolution, one rating by the unit, statistics.

Every read is scoped through ``organizations.service.affairs_clause`` (a request belongs to its
unit); a request outside the scope answers ``NotFound``. Each write is audited and commits once.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from eqian.core import audit, outbox
from eqian.core.accounts import Role, User
from eqian.core.db import utcnow
from eqian.core.errors import Conflict, Forbidden, NotFound, field_error
from eqian.core.months import bounds as month_bounds
from eqian.core.permissions import Principal
from eqian.mediation.service import local_bounds, month_expr
from eqian.organizations.models import LiaisonAssignment, Station, Unit
from eqian.organizations.service import affairs_clause
from eqian.requests import schemas
from eqian.requests.models import EnterpriseRequest, RequestDepartment, RequestEvent

SUBMITTED_TOPIC = "requests.submitted"
RESOLVED_TOPIC = "requests.resolved"
OVERDUE_TOPIC = "requests.overdue"
HANDLE_ROLES = frozenset({Role.BUREAU_ADMIN, Role.STATION_OFFICER, Role.LIAISON_OFFICER})
SUBMIT_ROLES = HANDLE_ROLES | {Role.UNIT_SECURITY}
RATE_ROLES = frozenset({Role.UNIT_SECURITY})
DEPARTMENT_ADMIN_ROLES = frozenset({Role.BUREAU_ADMIN})

# The departments a fresh installation routes to (editable through the API afterwards).
DEFAULT_DEPARTMENTS: tuple[tuple[str, str, str], ...] = (
    ("anti_fraud", "反诈中心", "fraud_training"),
    ("economic_crime", "经侦大队", "brand_protection,internal_corruption"),
    ("traffic", "交警织里中队", "traffic"),
    ("permits", "治安户政窗口", "permits"),
)


def _require(actor: Principal, roles: frozenset[Role]) -> None:
    if actor.role not in roles:
        raise Forbidden("当前角色无权执行此操作")


def _codes(raw: str) -> list[str]:
    return [c for c in raw.split(",") if c]


async def _commit(session: AsyncSession) -> None:
    try:
        await session.commit()
    except IntegrityError as exc:
        await session.rollback()
        raise Conflict("数据已被他人修改，请刷新后重试") from exc


def _event(request_id: int, action: str, actor: Principal | None, note: str, at: dt.datetime) -> RequestEvent:
    actor_id = actor.user_id if actor is not None and actor.user_id else None
    return RequestEvent(request_id=request_id, action=action, actor_id=actor_id, note=note, at=at)


def payload(row: EnterpriseRequest, at: dt.datetime) -> dict[str, Any]:
    return {
        "request_id": row.id,
        "station_id": row.station_id,
        "unit_id": row.unit_id,
        "kind": row.kind,
        "at": at.isoformat(),
    }


# --- departments ---------------------------------------------------------------------------------


async def ensure_departments(session: AsyncSession) -> int:
    """Insert the default departments that are missing (by code); no commit."""
    existing = set(await session.scalars(select(RequestDepartment.code)))
    added = 0
    for code, name, kinds in DEFAULT_DEPARTMENTS:
        if code not in existing:
            session.add(RequestDepartment(code=code, name=name, kinds=kinds, station_id=None, active=True))
            added += 1
    if added:
        await session.flush()
    return added


def _department_out(d: RequestDepartment) -> schemas.DepartmentOut:
    return schemas.DepartmentOut(
        id=d.id, code=d.code, name=d.name, kinds=_codes(d.kinds), station_id=d.station_id, active=d.active
    )


async def list_departments(session: AsyncSession, actor: Principal) -> list[schemas.DepartmentOut]:
    if await ensure_departments(session):
        await session.commit()
    rows = await session.scalars(select(RequestDepartment).order_by(RequestDepartment.id))
    return [_department_out(d) for d in rows]


async def create_department(
    session: AsyncSession, actor: Principal, body: schemas.DepartmentIn
) -> schemas.DepartmentOut:
    _require(actor, DEPARTMENT_ADMIN_ROLES)
    if body.station_id is not None and await session.get(Station, body.station_id) is None:
        raise field_error("station_id", "派出所不存在", "unknown")
    if await session.scalar(select(RequestDepartment.id).where(RequestDepartment.code == body.code)):
        raise Conflict("已有此编码的部门", code="duplicate_code")
    dept = RequestDepartment(
        code=body.code, name=body.name, kinds=",".join(body.kinds), station_id=body.station_id, active=True
    )
    session.add(dept)
    await session.flush()
    await audit.record_action(
        session, actor, "requests.department.create", "request_department", dept.id, body.model_dump()
    )
    await _commit(session)
    return _department_out(dept)


async def route_for(session: AsyncSession, unit: Unit, kind: str) -> tuple[int | None, int | None]:
    """(department, assignee) for a new request: the department that takes the kind (one of the
    unit's station before a district-wide one), else the unit's liaison officer, else the station's
    queue (neither)."""
    await ensure_departments(session)
    departments = [
        d
        for d in await session.scalars(
            select(RequestDepartment).where(RequestDepartment.active.is_(True)).order_by(RequestDepartment.id)
        )
        if kind in _codes(d.kinds) and d.station_id in (None, unit.station_id)
    ]
    if departments:
        best = min(departments, key=lambda d: (d.station_id is None, d.id))
        return best.id, None
    liaison = await session.scalar(
        select(LiaisonAssignment.officer_id)
        .join(User, User.id == LiaisonAssignment.officer_id)
        .where(LiaisonAssignment.unit_id == unit.id, User.is_active.is_(True))
        .order_by(LiaisonAssignment.officer_id)
        .limit(1)
    )
    return None, liaison


# --- writes --------------------------------------------------------------------------------------


async def submit(
    session: AsyncSession, actor: Principal, body: schemas.RequestIn, *, now: dt.datetime | None = None
) -> schemas.RequestDetail:
    """A unit's security head (or an officer, naming the unit) submits a request; it is routed and
    given a due time by its kind's SLA."""
    _require(actor, SUBMIT_ROLES)
    unit_id = body.unit_id
    if actor.role is Role.UNIT_SECURITY:
        own = next(iter(actor.scope.unit_ids), None)
        if unit_id is not None and unit_id != own:
            raise NotFound("单位不存在")
        unit_id = own
    if unit_id is None:
        raise field_error("unit_id", "须注明提出诉求的单位", "required")
    unit = await session.scalar(select(Unit).where(Unit.id == unit_id, affairs_clause(actor.scope)))
    if unit is None:
        raise NotFound("单位不存在")
    now = now or utcnow()
    department_id, assignee_id = await route_for(session, unit, body.kind)
    row = EnterpriseRequest(
        unit_id=unit.id,
        station_id=unit.station_id,
        kind=body.kind,
        title=body.title,
        body=body.body,
        status="submitted",
        department_id=department_id,
        assignee_id=assignee_id,
        submitted_by=actor.user_id or None,
        submitted_at=now,
        due_at=now + dt.timedelta(days=schemas.SLA_DAYS[body.kind]),
    )
    session.add(row)
    await session.flush()
    session.add(_event(row.id, "submitted", actor, "", now))
    await audit.record_action(
        session,
        actor,
        "requests.request.submit",
        "enterprise_request",
        row.id,
        {"unit_id": unit.id, "kind": body.kind, "department_id": department_id, "assignee_id": assignee_id},
    )
    outbox.emit(session, SUBMITTED_TOPIC, payload(row, now))
    await _commit(session)
    return await get_request(session, actor, row.id)


async def _load(session: AsyncSession, actor: Principal, request_id: int) -> EnterpriseRequest:
    row = await session.scalar(
        select(EnterpriseRequest)
        .join(Unit, Unit.id == EnterpriseRequest.unit_id)
        .where(EnterpriseRequest.id == request_id, affairs_clause(actor.scope))
        .with_for_update(of=EnterpriseRequest)
    )
    if row is None:
        raise NotFound("诉求不存在")
    return row


async def route(
    session: AsyncSession, actor: Principal, request_id: int, body: schemas.RouteIn
) -> schemas.RequestDetail:
    """An officer re-routes an open request to another department and/or officer."""
    row = await _load(session, actor, request_id)
    _require(actor, HANDLE_ROLES)
    if row.status == "resolved":
        raise Conflict("诉求已办结", code="invalid_state")
    if body.department_id is None and body.assignee_id is None:
        raise field_error("department_id", "须指定部门或承办民警", "required")
    if body.department_id is not None and await session.get(RequestDepartment, body.department_id) is None:
        raise field_error("department_id", "部门不存在", "unknown")
    if body.assignee_id is not None:
        user = await session.get(User, body.assignee_id)
        officer_roles = (Role.STATION_OFFICER.value, Role.LIAISON_OFFICER.value, Role.BUREAU_ADMIN.value)
        if user is None or user.role not in officer_roles or not user.is_active:
            raise field_error("assignee_id", "须为在岗民警账号", "invalid_user")
    old = [row.department_id, row.assignee_id]
    row.department_id, row.assignee_id = body.department_id, body.assignee_id
    now = utcnow()
    session.add(_event(row.id, "routed", actor, "", now))
    await audit.record_action(
        session,
        actor,
        "requests.request.route",
        "enterprise_request",
        row.id,
        {"department_id": [old[0], row.department_id], "assignee_id": [old[1], row.assignee_id]},
    )
    await _commit(session)
    return await get_request(session, actor, request_id)


async def reply(
    session: AsyncSession, actor: Principal, request_id: int, body: schemas.ReplyIn
) -> schemas.RequestDetail:
    """An officer replies (the request is then in progress); a later reply replaces the text."""
    row = await _load(session, actor, request_id)
    _require(actor, HANDLE_ROLES)
    if row.status == "resolved":
        raise Conflict("诉求已办结", code="invalid_state")
    now = utcnow()
    old = row.status
    row.reply, row.replied_at, row.status = body.text, now, "in_progress"
    session.add(_event(row.id, "replied", actor, body.text, now))
    await audit.record_action(
        session, actor, "requests.request.reply", "enterprise_request", row.id, {"status": [old, row.status]}
    )
    await _commit(session)
    return await get_request(session, actor, request_id)


async def resolve(
    session: AsyncSession,
    actor: Principal,
    request_id: int,
    body: schemas.ResolveIn,
    *,
    now: dt.datetime | None = None,
) -> schemas.RequestDetail:
    row = await _load(session, actor, request_id)
    _require(actor, HANDLE_ROLES)
    if row.status == "resolved":
        raise Conflict("诉求已办结", code="invalid_state")
    now = now or utcnow()
    old = row.status
    row.status, row.resolution, row.resolved_at = "resolved", body.resolution, now
    session.add(_event(row.id, "resolved", actor, body.resolution, now))
    await audit.record_action(
        session,
        actor,
        "requests.request.resolve",
        "enterprise_request",
        row.id,
        {"status": [old, "resolved"]},
    )
    outbox.emit(session, RESOLVED_TOPIC, payload(row, now))
    await _commit(session)
    return await get_request(session, actor, request_id)


async def rate(
    session: AsyncSession, actor: Principal, request_id: int, body: schemas.RateIn
) -> schemas.RequestDetail:
    """The unit rates a resolved request, 1–5, once."""
    row = await _load(session, actor, request_id)
    _require(actor, RATE_ROLES)
    if row.status != "resolved":
        raise Conflict("诉求办结后才能评价", code="invalid_state")
    if row.rating is not None:
        raise Conflict("该诉求已评价", code="already_rated")
    now = utcnow()
    row.rating, row.rating_comment, row.rated_at = body.rating, body.comment, now
    session.add(_event(row.id, "rated", actor, f"{body.rating}★ {body.comment}".strip(), now))
    await audit.record_action(
        session, actor, "requests.request.rate", "enterprise_request", row.id, {"rating": body.rating}
    )
    await _commit(session)
    return await get_request(session, actor, request_id)


# --- reads ---------------------------------------------------------------------------------------

Assignee = aliased(User)


def _query(actor: Principal) -> Select[EnterpriseRequest, str, str, str]:
    return (
        select(EnterpriseRequest, Unit.name, RequestDepartment.name, Assignee.display_name)
        .join(Unit, Unit.id == EnterpriseRequest.unit_id)
        .outerjoin(RequestDepartment, RequestDepartment.id == EnterpriseRequest.department_id)
        .outerjoin(Assignee, Assignee.id == EnterpriseRequest.assignee_id)
        .where(affairs_clause(actor.scope))
    )


def _out(
    r: EnterpriseRequest, unit_name: str, dept: str | None, assignee: str | None, now: dt.datetime
) -> schemas.RequestOut:
    return schemas.RequestOut(
        id=r.id,
        unit_id=r.unit_id,
        unit_name=unit_name,
        station_id=r.station_id,
        kind=r.kind,
        title=r.title,
        status=r.status,
        department_id=r.department_id,
        department_name=dept,
        assignee_id=r.assignee_id,
        assignee_name=assignee,
        submitted_at=r.submitted_at,
        due_at=r.due_at,
        overdue=r.status != "resolved" and r.due_at < now,
        resolved_at=r.resolved_at,
        rating=r.rating,
    )


def is_overdue(now: dt.datetime) -> ColumnElement[bool]:
    return (EnterpriseRequest.status != "resolved") & (EnterpriseRequest.due_at < now)


async def list_requests(
    session: AsyncSession,
    actor: Principal,
    *,
    status: str | None = None,
    kind: str | None = None,
    unit_id: int | None = None,
    station_id: int | None = None,
    assignee_id: int | None = None,
    month: str | None = None,
    limit: int = 50,
    offset: int = 0,
    now: dt.datetime | None = None,
) -> tuple[list[schemas.RequestOut], int]:
    """Requests in scope; ``status`` also takes ``open`` (not resolved) and ``overdue``; ``month``
    picks those submitted in that local month. Open ones by due time, resolved ones newest first."""
    now = now or utcnow()
    query = _query(actor)
    if status == "open":
        query = query.where(EnterpriseRequest.status != "resolved")
    elif status == "overdue":
        query = query.where(is_overdue(now))
    elif status:
        query = query.where(EnterpriseRequest.status == status)
    for column, value in (
        (EnterpriseRequest.kind, kind),
        (EnterpriseRequest.unit_id, unit_id),
        (EnterpriseRequest.station_id, station_id),
        (EnterpriseRequest.assignee_id, assignee_id),
    ):
        if value is not None:
            query = query.where(column == value)
    if month:
        lo, hi = month_bounds(month)
        query = query.where(EnterpriseRequest.submitted_at >= lo, EnterpriseRequest.submitted_at < hi)
    total = await session.scalar(select(func.count()).select_from(query.subquery())) or 0
    order = (
        (EnterpriseRequest.due_at, EnterpriseRequest.id)
        if status in ("open", "overdue", "submitted", "in_progress")
        else (EnterpriseRequest.submitted_at.desc(), EnterpriseRequest.id.desc())
    )
    rows = await session.execute(query.order_by(*order).limit(limit).offset(offset))
    return [_out(*r, now) for r in rows.all()], total


async def get_request(
    session: AsyncSession, actor: Principal, request_id: int, *, now: dt.datetime | None = None
) -> schemas.RequestDetail:
    row = (await session.execute(_query(actor).where(EnterpriseRequest.id == request_id))).first()
    if row is None:
        raise NotFound("诉求不存在")
    r = row[0]
    out = schemas.RequestDetail(
        **_out(*row, now or utcnow()).model_dump(),
        body=r.body,
        reply=r.reply,
        replied_at=r.replied_at,
        resolution=r.resolution,
        rating_comment=r.rating_comment,
        rated_at=r.rated_at,
    )
    events = await session.execute(
        select(RequestEvent, User.display_name)
        .outerjoin(User, User.id == RequestEvent.actor_id)
        .where(RequestEvent.request_id == request_id)
        .order_by(RequestEvent.at, RequestEvent.id)
    )
    out.events = [
        schemas.EventOut(action=e.action, actor_name=name, note=e.note, at=e.at) for e, name in events.all()
    ]
    return out


# --- statistics ----------------------------------------------------------------------------------


def days_between(start: Any, end: Any, dialect: str) -> ColumnElement[Any]:
    if dialect == "postgresql":
        return func.extract("epoch", end - start) / 86400.0
    return func.julianday(end) - func.julianday(start)


async def stats(
    session: AsyncSession,
    actor: Principal,
    group: str,
    *,
    since: dt.date | None = None,
    until: dt.date | None = None,
    now: dt.datetime | None = None,
) -> tuple[list[schemas.StatsRow], schemas.StatsRow]:
    """收集 / 办结 / 平均办理天数 per kind, station, month or unit (Asia/Shanghai, dates inclusive):
    requests submitted in the period; requests resolved in it and their mean days from submission;
    of those submitted, how many are open past their due time now; ratings given in the period."""
    now = now or utcnow()
    lo, hi = local_bounds(since, until)
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"

    def key_of(column: Any) -> Any:
        if group == "kind":
            return EnterpriseRequest.kind
        if group == "station":
            return EnterpriseRequest.station_id
        if group == "unit":
            return EnterpriseRequest.unit_id
        return month_expr(column, dialect)

    def window(column: Any) -> list[ColumnElement[bool]]:
        clauses: list[ColumnElement[bool]] = [column.is_not(None)]
        if lo is not None:
            clauses.append(column >= lo)
        if hi is not None:
            clauses.append(column < hi)
        return clauses

    empty: dict[str, float] = {
        "collected": 0,
        "overdue": 0,
        "resolved": 0,
        "days": 0.0,
        "rated": 0,
        "stars": 0,
    }
    counts: dict[str, dict[str, float]] = {}

    async def add(
        column: Any, *aggregates: tuple[str, Any], extra: list[ColumnElement[bool]] | None = None
    ) -> None:
        key = key_of(column).label("k")
        rows = await session.execute(
            select(key, *(agg for _, agg in aggregates))
            .select_from(EnterpriseRequest)
            .join(Unit, Unit.id == EnterpriseRequest.unit_id)
            .where(affairs_clause(actor.scope), *window(column), *(extra or []))
            .group_by(key)
        )
        for k, *values in rows.all():
            row = counts.setdefault(str(k), dict(empty))
            for (name, _), value in zip(aggregates, values, strict=True):
                row[name] = float(value or 0)

    await add(EnterpriseRequest.submitted_at, ("collected", func.count()))
    await add(EnterpriseRequest.submitted_at, ("overdue", func.count()), extra=[is_overdue(now)])
    await add(
        EnterpriseRequest.resolved_at,
        ("resolved", func.count()),
        (
            "days",
            func.sum(days_between(EnterpriseRequest.submitted_at, EnterpriseRequest.resolved_at, dialect)),
        ),
    )
    await add(
        EnterpriseRequest.rated_at,
        ("rated", func.count()),
        ("stars", func.sum(EnterpriseRequest.rating)),
        extra=[EnterpriseRequest.rating.is_not(None)],
    )
    labels: dict[str, str] = {}
    if group == "kind":
        labels = dict(schemas.KINDS)
    elif group in ("station", "unit") and counts:
        ids = [int(k) for k in counts]
        model: Any = Station if group == "station" else Unit
        labels = {
            str(i): n
            for i, n in (await session.execute(select(model.id, model.name).where(model.id.in_(ids)))).all()
        }
    if group in ("station", "unit"):
        ordered = sorted(counts, key=int)
    elif group == "kind":
        order = list(schemas.KINDS)
        ordered = sorted(counts, key=lambda k: order.index(k) if k in order else len(order))
    else:
        ordered = sorted(counts)
    rows = [_row(k, labels.get(k, k), counts[k]) for k in ordered]
    total = dict(empty)
    for c in counts.values():
        for name in total:
            total[name] += c[name]
    return rows, _row("total", "合计", total)


def _row(key: str, label: str, c: dict[str, float]) -> schemas.StatsRow:
    return schemas.StatsRow(
        key=key,
        label=label,
        collected=int(c["collected"]),
        resolved=int(c["resolved"]),
        avg_days=round(c["days"] / c["resolved"], 1) if c["resolved"] else None,
        overdue=int(c["overdue"]),
        rated=int(c["rated"]),
        avg_rating=round(c["stars"] / c["rated"], 2) if c["rated"] else None,
    )
