"""Rules of incidents: intake (classify, link, route), the triage queue, the lifecycle, overrides,
the routing policy, and the audited reveal of the caller's phone.

Scope: bureau admins see every incident; station officers their station's; liaison officers the
incidents of their units; a unit's security staff and service-point staff only the matters handed
to a unit they see (route ``self_governance`` or ``mediation``, once triaged and assigned);
mediators none here (they work on mediation cases). An incident outside the scope answers ``NotFound``.

Transitions and who may make them:

=============  ==========================  ==================================================
action         from → to                   roles
=============  ==========================  ==================================================
triage         reported → triaged→assigned bureau_admin, station_officer
start          assigned → in_progress      bureau_admin, station_officer; unit_security when
                                           the route is self_governance
resolve        in_progress → resolved      as start
close          resolved → closed           bureau_admin, station_officer
reopen         resolved|closed → in_progress  bureau_admin, station_officer
=============  ==========================  ==================================================
"""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, false, func, or_, select, true
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from eqian.core import audit, outbox
from eqian.core.accounts import Role, User
from eqian.core.db import utcnow
from eqian.core.errors import Conflict, Forbidden, NotFound, ValidationFailed, field_error
from eqian.core.ids import mask_mobile
from eqian.core.months import bounds as month_bounds
from eqian.core.months import check as _check_month
from eqian.core.permissions import REVEAL_ROLES, Principal, Scope, ScopeKind
from eqian.incidents import classifier, linking, routing, schemas
from eqian.incidents.models import Incident, IncidentEvent, IncidentOverride, RoutingRule
from eqian.organizations.categories import CATEGORIES as UNIT_CATEGORIES
from eqian.organizations.models import Station, Unit
from eqian.organizations.service import visible_unit_ids

log = logging.getLogger(__name__)
REPORTED_TOPIC = "incidents.reported"
CHANGED_TOPIC = "incidents.changed"
OVERDUE_TOPIC = "incidents.overdue"
IDEMPOTENCY_SCOPE = "incidents.create"

INTAKE_ROLES = frozenset({Role.BUREAU_ADMIN, Role.STATION_OFFICER})
TRIAGE_ROLES = frozenset({Role.BUREAU_ADMIN, Role.STATION_OFFICER})
OFFICER_ROLES = frozenset({Role.BUREAU_ADMIN, Role.STATION_OFFICER})
POLICY_ROLES = frozenset({Role.BUREAU_ADMIN})
OPEN_STATUSES = ("reported", "triaged", "assigned", "in_progress")
DONE_STATUSES = ("resolved", "closed")
HANDED_OVER = ("self_governance", "mediation")
# action -> (allowed from, to, timestamp column)
TRANSITIONS: dict[str, tuple[frozenset[str], str, str | None]] = {
    "start": (frozenset({"assigned"}), "in_progress", "started_at"),
    "resolve": (frozenset({"in_progress"}), "resolved", "resolved_at"),
    "close": (frozenset({"resolved"}), "closed", "closed_at"),
    "reopen": (frozenset({"resolved", "closed"}), "in_progress", None),
}
UNIT_ACTIONS = frozenset({"start", "resolve"})  # what a unit's security staff may do, self-governed only
MEDIATION_TYPES = frozenset(
    {"labor", "processing_fee", "economic", "contract", "family", "neighbor", "traffic"}
)


# --- scope -------------------------------------------------------------------------------------


def incident_clause(scope: Scope) -> ColumnElement[bool]:
    """The incidents a scope may see, as a WHERE clause on ``Incident``."""
    match scope.kind:
        case ScopeKind.ALL:
            return true()
        case ScopeKind.STATIONS:
            return Incident.station_id.in_(scope.station_ids)
        case ScopeKind.LIAISON | ScopeKind.ZONE:
            return Incident.unit_id.in_(visible_unit_ids(scope))
        case ScopeKind.UNITS | ScopeKind.SERVICE_POINTS:
            return and_(
                Incident.unit_id.in_(visible_unit_ids(scope)),
                Incident.route.in_(HANDED_OVER),
                Incident.status.not_in(("reported", "triaged")),
            )
        case _:
            return false()


def stations_of(actor: Principal) -> frozenset[int] | None:
    """The stations an intake by ``actor`` may file into; ``None``: any."""
    if actor.scope.kind is ScopeKind.ALL:
        return None
    if actor.scope.kind is ScopeKind.STATIONS:
        return actor.scope.station_ids
    return frozenset()


def _require(actor: Principal, roles: frozenset[Role]) -> None:
    if actor.role not in roles:
        raise Forbidden("当前角色无权执行此操作")


def require_intake(actor: Principal) -> None:
    _require(actor, INTAKE_ROLES)


# --- intake (decisions; writing is incidents/intake.py) ----------------------------------------


def severity_for(category: str, police: bool, fraud_loss: Decimal | None) -> str:
    if category == "fire":
        return "high"
    if category == "fraud":
        loss = fraud_loss or Decimal(0)
        return "critical" if loss >= 100_000 else "high" if loss >= 10_000 else "medium"
    if category == "help":
        return "high"  # a lost child is searched for at once
    return "medium" if police else "low"


def source_key(number: str | None, reported_at: dt.datetime, phone: str | None, text: str) -> str:
    """The 110 number, or a hash of time (to the minute), phone and text when there is none."""
    if number:
        return f"n:{number.strip()}"[:64]
    stamp = reported_at.astimezone(dt.UTC).strftime("%Y%m%d%H%M")
    digest = hashlib.sha256(f"{stamp}|{phone or ''}|{text.strip()}".encode()).hexdigest()[:40]
    return f"h:{digest}"


def classification_of(
    text: str, category: str | None, police: bool | None, found: classifier.Classification | None = None
) -> tuple[str, bool, float, list[str], str, str]:
    """(category, police, confidence, evidence, version, source): the given category wins."""
    found = found or classifier.classify(text)
    if category is None:
        return (
            found.category,
            found.police if police is None else police,
            found.confidence,
            list(found.evidence),
            found.version,
            "classifier",
        )
    if police is None:
        police = (
            found.police if found.category == category else routing.POLICE_BY_CATEGORY.get(category, True)
        )
    return category, police, 1.0, [], found.version, "import"


@dataclass(frozen=True)
class Prepared:
    """One incident's row, decided without touching the database (the import does 100,000 of these)."""

    values: dict[str, Any]
    unit_category: str | None


def prepare(
    *,
    text: str,
    reported_at: dt.datetime,
    number: str | None,
    phone: str | None,
    address: str,
    lat: float | None,
    lng: float | None,
    unit_ref: str | None,
    category: str | None,
    police: bool | None,
    severity: str | None,
    fraud_loss: Decimal | None,
    station_id: int | None,
    stations: frozenset[int] | None,
    linker: linking.Linker,
    policy: routing.Policy,
    source: str,
    created_by: int | None,
    fallback_station: int | None = None,
    classified: classifier.Classification | None = None,
) -> Prepared:
    """Classify, link and route. Raises ``ValidationFailed`` naming the field when it cannot."""
    cat, pol, confidence, evidence, version, cat_source = classification_of(
        text, category, police, classified
    )
    if unit_ref:
        unit = linker.by_ref(unit_ref, stations)
        if unit is None:
            raise field_error("unit_ref", "单位不存在或不在您的辖区内", "unknown_unit")
        link = linking.Link(unit, "ref", f"单位编号/信用代码精确匹配：{unit_ref.strip()}")
    else:
        link = linker.link(ref=None, text=text, address=address, lat=lat, lng=lng, stations=stations)
    if link.unit is not None:
        station = link.unit.station_id
    elif station_id is not None:
        if stations is not None and station_id not in stations:
            raise field_error("station_id", "派出所不存在或不在您的辖区内", "unknown_station")
        if station_id not in linker.station_ids:
            raise field_error("station_id", "派出所不存在", "unknown_station")
        station = station_id
    elif stations is not None and len(stations) == 1:
        station = next(iter(stations))
    else:
        nearest = linker.nearest_station(lat, lng)
        if nearest is None:
            nearest = fallback_station
        if nearest is None or (stations is not None and nearest not in stations):
            raise field_error("station_id", "无法确定管辖派出所：请填写 station_id 或坐标", "required")
        station = nearest
    unit_category = link.unit.category_code if link.unit else None
    decision = policy.decide(cat, pol, unit_category)
    route = decision.route
    if route == "self_governance" and link.unit is None:
        route = "mediation" if not pol else "dispatch"
    sla = decision.sla_hours if route == decision.route else routing.DEFAULT_SLA[route]
    return Prepared(
        {
            "source": source,
            "reported_at": reported_at,
            "station_id": station,
            "unit_id": link.unit.id if link.unit else None,
            "address": address,
            "lat": lat,
            "lng": lng,
            "description": text,
            "caller_phone": phone,
            "category": cat,
            "police": pol,
            "confidence": round(confidence, 4),
            "evidence": evidence,
            "classifier_version": version[:32],
            "category_source": cat_source,
            "severity": severity or severity_for(cat, pol, fraud_loss),
            "link_method": link.method,
            "link_reason": link.reason[:200],
            "route": route,
            "sla_hours": sla,
            "due_at": reported_at + dt.timedelta(hours=sla),
            "status": "reported",
            "fraud_loss_yuan": fraud_loss,
            "source_key": source_key(number, reported_at, phone, text),
            "created_by": created_by,
        },
        unit_category,
    )


def reported_payload(incident_id: int, v: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "incident_id": incident_id,
        "station_id": v["station_id"],
        "unit_id": v["unit_id"],
        "category": v["category"],
        "police": v["police"],
        "route": v["route"],
        "at": v["reported_at"].isoformat(),
        "summary": _summary(v["description"]),
    }


def _summary(text: str) -> str:
    """≤ 60 characters, digit runs that could be a phone number masked."""
    out: list[str] = []
    run = ""
    for ch in text:
        if ch.isdigit():
            run += ch
            continue
        out.append("*" * len(run) if len(run) >= 7 else run)
        run = ""
        out.append(ch)
    out.append("*" * len(run) if len(run) >= 7 else run)
    return "".join(out)[:60]


def _changed_payload(incident: Incident, at: dt.datetime) -> dict[str, Any]:
    return {
        "incident_id": incident.id,
        "station_id": incident.station_id,
        "unit_id": incident.unit_id,
        "status": incident.status,
        "category": incident.category,
        "route": incident.route,
        "assignee_id": incident.assignee_id,
        "at": at.isoformat(),
    }


def classify_text(text: str) -> schemas.ClassifyOut:
    found = classifier.classify(text)
    return schemas.ClassifyOut(
        category=found.category,
        category_label=classifier.CATEGORIES.get(found.category, found.category),
        police=found.police,
        confidence=found.confidence,
        evidence=list(found.evidence),
        version=found.version,
    )


# --- reading -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class IncidentFilters:
    status: str | None = None  # a status, or open | overdue | queue (reported)
    route: str | None = None
    category: str | None = None
    police: bool | None = None
    station_id: int | None = None
    unit_id: int | None = None
    month: str | None = None  # YYYY-MM, Asia/Shanghai, by reported_at
    assignee_id: int | None = None
    q: str | None = None
    limit: int = 50
    offset: int = 0


def _query(actor: Principal) -> Select[Incident, str, str]:
    return (
        select(Incident, Station.name, Unit.name)
        .join(Station, Station.id == Incident.station_id)
        .outerjoin(Unit, Unit.id == Incident.unit_id)
        .where(incident_clause(actor.scope))
    )


def is_overdue(now: dt.datetime) -> ColumnElement[bool]:
    return and_(Incident.status.in_(OPEN_STATUSES), Incident.due_at < now)


def _is_overdue(i: Incident, now: dt.datetime) -> bool:
    return i.status in OPEN_STATUSES and i.due_at < now


def incident_out(i: Incident, names: tuple[str, str | None], now: dt.datetime) -> schemas.IncidentOut:
    return schemas.IncidentOut(
        id=i.id,
        number=i.source_key[2:] if i.source_key.startswith("n:") else None,
        source=i.source,
        reported_at=i.reported_at,
        station_id=i.station_id,
        station_name=names[0],
        unit_id=i.unit_id,
        unit_name=names[1],
        address=i.address,
        description=i.description,
        caller_phone=mask_mobile(i.caller_phone),
        category=i.category,
        category_label=classifier.CATEGORIES.get(i.category, i.category),
        police=i.police,
        confidence=i.confidence,
        evidence=list(i.evidence or []),
        category_source=i.category_source,
        severity=i.severity,
        link_method=i.link_method,
        link_reason=i.link_reason,
        route=i.route,
        sla_hours=i.sla_hours,
        due_at=i.due_at,
        overdue=_is_overdue(i, now),
        status=i.status,
        assignee_id=i.assignee_id,
        mediation_case_id=i.mediation_case_id,
        fraud_loss_yuan=i.fraud_loss_yuan,
        fraud_recovered_yuan=i.fraud_recovered_yuan,
    )


async def names_of(session: AsyncSession, station_id: int, unit_id: int | None) -> tuple[str, str | None]:
    """Station and unit names, read from the database (for when the cached registry lacks them)."""
    station = await session.scalar(select(Station.name).where(Station.id == station_id))
    unit = await session.scalar(select(Unit.name).where(Unit.id == unit_id)) if unit_id else None
    return station or "", unit


def filtered(actor: Principal, f: IncidentFilters, now: dt.datetime) -> Select[Incident, str, str]:
    query = _query(actor)
    if f.status == "open":
        query = query.where(Incident.status.in_(OPEN_STATUSES))
    elif f.status == "overdue":
        query = query.where(is_overdue(now))
    elif f.status == "queue":
        query = query.where(Incident.status == "reported")
    elif f.status:
        query = query.where(Incident.status == f.status)
    if f.route:
        query = query.where(Incident.route == f.route)
    if f.category:
        query = query.where(Incident.category == f.category)
    if f.police is not None:
        query = query.where(Incident.police.is_(f.police))
    if f.station_id is not None:
        query = query.where(Incident.station_id == f.station_id)
    if f.unit_id is not None:
        query = query.where(Incident.unit_id == f.unit_id)
    if f.assignee_id is not None:
        query = query.where(Incident.assignee_id == f.assignee_id)
    if f.month:
        lo, hi = month_bounds(f.month)
        query = query.where(Incident.reported_at >= lo, Incident.reported_at < hi)
    if f.q:
        escaped = f.q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(
            or_(
                Incident.description.like(f"%{escaped}%", escape="\\"),
                Incident.address.like(f"%{escaped}%", escape="\\"),
            )
        )
    return query


async def list_incidents(
    session: AsyncSession, actor: Principal, f: IncidentFilters, *, now: dt.datetime | None = None
) -> tuple[list[schemas.IncidentOut], int]:
    now = now or utcnow()
    query = filtered(actor, f, now)
    total = await session.scalar(select(func.count()).select_from(query.subquery())) or 0
    order = (
        (Incident.reported_at, Incident.id)
        if f.status in ("queue", "reported")
        else (Incident.reported_at.desc(), Incident.id.desc())
    )
    rows = await session.execute(query.order_by(*order).limit(f.limit).offset(f.offset))
    return [incident_out(i, (s, u), now) for i, s, u in rows], total


async def _load(
    session: AsyncSession, actor: Principal, incident_id: int, *, for_update: bool = False
) -> tuple[Incident, str, str | None]:
    query = _query(actor).where(Incident.id == incident_id)
    if for_update:  # a transition reads the state it changes: no two at once (PostgreSQL)
        query = query.with_for_update(of=Incident)
    row = (await session.execute(query)).first()
    if row is None:
        raise NotFound("警情不存在")
    return row


async def get_incident(
    session: AsyncSession, actor: Principal, incident_id: int, *, now: dt.datetime | None = None
) -> schemas.IncidentDetail:
    incident, station_name, unit_name = await _load(session, actor, incident_id)
    out = schemas.IncidentDetail(
        **incident_out(incident, (station_name, unit_name), now or utcnow()).model_dump(),
        lat=incident.lat,
        lng=incident.lng,
        triaged_at=incident.triaged_at,
        assigned_at=incident.assigned_at,
        started_at=incident.started_at,
        resolved_at=incident.resolved_at,
        closed_at=incident.closed_at,
        reopen_count=incident.reopen_count,
    )
    events = await session.execute(
        select(IncidentEvent, User.display_name)
        .outerjoin(User, User.id == IncidentEvent.actor_id)
        .where(IncidentEvent.incident_id == incident_id)
        .order_by(IncidentEvent.at, IncidentEvent.id)
    )
    out.events = [
        schemas.IncidentEventOut(
            action=e.action,
            from_status=e.from_status,
            to_status=e.to_status,
            actor_name=name,
            note=e.note,
            at=e.at,
        )
        for e, name in events
    ]
    return out


async def reveal_phone(session: AsyncSession, actor: Principal, incident_id: int) -> schemas.RevealOut:
    """The caller's whole number, for roles that need it; every reveal is audited."""
    incident, _, _ = await _load(session, actor, incident_id)
    if actor.role not in REVEAL_ROLES:
        raise Forbidden("您的角色无权查看完整号码")
    # The same action as every other reveal, so one query over the audit log finds them all.
    await audit.record_action(
        session, actor, "personal_data.reveal", "incident", incident.id, {"fields": ["caller_phone"]}
    )
    await session.commit()
    return schemas.RevealOut(caller_phone=incident.caller_phone)


# --- triage and lifecycle ----------------------------------------------------------------------


def _event(
    incident: Incident, actor: Principal | None, action: str, frm: str | None, note: str, at: dt.datetime
) -> IncidentEvent:
    return IncidentEvent(
        incident_id=incident.id,
        action=action,
        from_status=frm,
        to_status=incident.status,
        actor_id=(actor.user_id or None) if actor else None,
        note=note[:500],
        at=at,
    )


async def _commit(session: AsyncSession) -> None:
    try:
        await session.commit()
    except IntegrityError as exc:
        await session.rollback()
        raise Conflict("数据已被他人修改，请刷新后重试") from exc


async def _unit_for(session: AsyncSession, actor: Principal, unit_id: int) -> Unit:
    stations = stations_of(actor)
    query = select(Unit).where(Unit.id == unit_id)
    if stations is not None:
        query = query.where(Unit.station_id.in_(stations))
    unit = await session.scalar(query)
    if unit is None:
        raise field_error("unit_id", "单位不存在或不在您的辖区内", "unknown_unit")
    return unit


async def _check_assignee(session: AsyncSession, user_id: int, station_id: int) -> None:
    user = await session.get(User, user_id)
    ok = (
        user is not None
        and user.is_active
        and (
            user.role == Role.BUREAU_ADMIN.value
            or (user.role == Role.STATION_OFFICER.value and user.station_id == station_id)
        )
    )
    if not ok:
        raise field_error("assignee_id", "须为本所在岗民警", "invalid_assignee")


def mediation_opener() -> Callable[..., Any] | None:
    """``mediation.service.open_case_from_incident`` when the mediation domain has it."""
    try:
        module = importlib.import_module("eqian.mediation.service")
    except ModuleNotFoundError as exc:
        if exc.name != "eqian.mediation.service":
            raise
        return None
    opener = getattr(module, "open_case_from_incident", None)
    return opener if callable(opener) else None


async def _open_mediation(
    session: AsyncSession, actor: Principal, incident: Incident, team_id: int | None
) -> tuple[int | None, str]:
    opener = mediation_opener()
    if opener is None:
        return None, "调解模块尚未启用：请线下转交调解组织"
    party_in = importlib.import_module("eqian.mediation.schemas").PartyIn
    try:
        parties = [party_in(name="报警人", role="applicant", phone=incident.caller_phone or None)]
    except ValueError:  # a number mediation does not take (e.g. a landline): the party without it
        parties = [party_in(name="报警人", role="applicant")]
    case_id = await opener(
        session,
        actor,
        incident_id=incident.id,
        unit_id=incident.unit_id,
        station_id=incident.station_id,
        dispute_type=incident.category if incident.category in MEDIATION_TYPES else "other",
        summary=incident.description[:500],
        amount_in_dispute=None,
        parties=parties,
        team_id=team_id,
    )
    return int(case_id), f"已转调解案件 #{case_id}"


async def triage(
    session: AsyncSession,
    actor: Principal,
    incident_id: int,
    body: schemas.TriageIn,
    *,
    now: dt.datetime | None = None,
) -> schemas.IncidentDetail:
    """Accept the suggestion or change category, police, unit, route, severity in one step; the
    incident is then handed over (assigned): to an officer, to the unit, or to a mediation team."""
    incident, _, _ = await _load(session, actor, incident_id, for_update=True)
    _require(actor, TRIAGE_ROLES)
    if incident.status != "reported":
        raise Conflict("该警情已分流", code="invalid_state")
    now = now or utcnow()
    changes: dict[str, Any] = {}
    category = body.category or incident.category
    police = incident.police if body.police is None else body.police
    if (category, police) != (incident.category, incident.police):
        session.add(
            IncidentOverride(
                incident_id=incident.id,
                description=incident.description,
                from_category=incident.category,
                to_category=category,
                from_police=incident.police,
                to_police=police,
                classifier_version=incident.classifier_version,
                actor_id=actor.user_id or None,
                at=now,
            )
        )
        changes["category"] = [incident.category, category]
        changes["police"] = [incident.police, police]
        incident.category, incident.police, incident.category_source = category, police, "officer"
    unit_category: str | None = None
    if body.unit_id is not None and body.unit_id != incident.unit_id:
        unit = await _unit_for(session, actor, body.unit_id)
        changes["unit_id"] = [incident.unit_id, unit.id]
        incident.unit_id, incident.station_id = unit.id, unit.station_id
        incident.link_method, incident.link_reason = "manual", f"民警分流时指定：{unit.name}"[:200]
        unit_category = unit.category_code
    elif incident.unit_id is not None:
        unit_category = await session.scalar(select(Unit.category_code).where(Unit.id == incident.unit_id))
    policy = await routing.get_policy(session)
    route = body.route or policy.decide(category, police, unit_category).route
    if route == "self_governance" and incident.unit_id is None:
        raise field_error("route", "企业自治须先关联单位", "unit_required")
    if route != incident.route:
        changes["route"] = [incident.route, route]
    incident.route = route
    incident.sla_hours = policy.sla_for(route, category, police, unit_category)
    incident.due_at = incident.reported_at + dt.timedelta(hours=incident.sla_hours)
    if body.severity and body.severity != incident.severity:
        changes["severity"] = [incident.severity, body.severity]
        incident.severity = body.severity
    incident.status, incident.triaged_at = "triaged", now
    session.add(_event(incident, actor, "triaged", "reported", body.note, now))
    note = ""
    if route == "dispatch":
        assignee = body.assignee_id or actor.user_id
        if body.assignee_id is not None:
            await _check_assignee(session, body.assignee_id, incident.station_id)
        incident.assignee_id = assignee or None
        note = "派警处置"
    elif route == "self_governance":
        incident.assignee_id = None
        note = "移交单位安保负责人自治处置"
    else:
        incident.assignee_id = None
        case_id, note = await _open_mediation(session, actor, incident, body.team_id)
        incident.mediation_case_id = case_id
    incident.status, incident.assigned_at = "assigned", now
    session.add(_event(incident, actor, "assigned", "triaged", note, now))
    outbox.emit(session, CHANGED_TOPIC, _changed_payload(incident, now))
    await audit.record_action(
        session,
        actor,
        "incidents.incident.triage",
        "incident",
        incident.id,
        {**changes, "status": ["reported", "assigned"], "route": route, "assignee_id": incident.assignee_id},
    )
    await _commit(session)
    return await get_incident(session, actor, incident_id)


async def transition(
    session: AsyncSession,
    actor: Principal,
    incident_id: int,
    body: schemas.TransitionIn,
    *,
    now: dt.datetime | None = None,
) -> schemas.IncidentDetail:
    incident, _, _ = await _load(session, actor, incident_id, for_update=True)
    allowed = actor.role in OFFICER_ROLES or (
        actor.role is Role.UNIT_SECURITY
        and body.action in UNIT_ACTIONS
        and incident.route == "self_governance"
    )
    if not allowed:
        raise Forbidden("当前角色无权执行此操作")
    sources, target, stamp = TRANSITIONS[body.action]
    if incident.status not in sources:
        raise Conflict("警情当前状态不能执行该操作", code="invalid_state")
    now = now or utcnow()
    before = incident.status
    changes: dict[str, Any] = {"status": [before, target]}
    incident.status = target
    if stamp:
        setattr(incident, stamp, now)
    if body.action == "reopen":
        incident.reopen_count += 1
        incident.resolved_at = incident.closed_at = None
        incident.overdue_since = None
    if body.fraud_recovered_yuan is not None:
        if incident.category != "fraud":
            raise field_error("fraud_recovered_yuan", "仅诈骗类警情可填写追回金额", "not_fraud")
        changes["fraud_recovered_yuan"] = [incident.fraud_recovered_yuan, body.fraud_recovered_yuan]
        incident.fraud_recovered_yuan = body.fraud_recovered_yuan
    action = {"start": "started", "resolve": "resolved", "close": "closed", "reopen": "reopened"}[body.action]
    session.add(_event(incident, actor, action, before, body.note, now))
    outbox.emit(session, CHANGED_TOPIC, _changed_payload(incident, now))
    await audit.record_action(
        session, actor, f"incidents.incident.{body.action}", "incident", incident.id, changes
    )
    await _commit(session)
    return await get_incident(session, actor, incident_id)


async def relink(
    session: AsyncSession,
    actor: Principal,
    incident_id: int,
    body: schemas.LinkIn,
    *,
    now: dt.datetime | None = None,
) -> schemas.IncidentDetail:
    """An officer corrects the unit an incident is about (or clears it); the reason is kept."""
    incident, _, _ = await _load(session, actor, incident_id, for_update=True)
    _require(actor, OFFICER_ROLES)
    if incident.status in DONE_STATUSES:
        raise Conflict("已办结的警情不能更改关联单位", code="invalid_state")
    now = now or utcnow()
    before = incident.unit_id
    if body.unit_id is None:
        if incident.route == "self_governance" and incident.status != "reported":
            raise field_error("unit_id", "企业自治中的警情必须关联单位", "unit_required")
        incident.unit_id = None
        incident.link_method = "none"
        incident.link_reason = f"民警取消关联：{body.reason}"[:200]
    else:
        unit = await _unit_for(session, actor, body.unit_id)
        incident.unit_id, incident.station_id = unit.id, unit.station_id
        incident.link_method = "manual"
        incident.link_reason = f"民警更正：{body.reason}"[:200]
    session.add(_event(incident, actor, "relinked", incident.status, body.reason, now))
    outbox.emit(session, CHANGED_TOPIC, _changed_payload(incident, now))
    await audit.record_action(
        session,
        actor,
        "incidents.incident.relink",
        "incident",
        incident.id,
        {"unit_id": [before, incident.unit_id]},
    )
    await _commit(session)
    return await get_incident(session, actor, incident_id)


async def resolve_from_mediation(
    session: AsyncSession, *, incident_id: int, case_id: int, outcome: str | None, at: dt.datetime
) -> bool:
    """``mediation.case_closed``: the incident is resolved (inside the handler's transaction)."""
    incident = await session.get(Incident, incident_id)
    if incident is None or incident.status in DONE_STATUSES:
        return False
    before = incident.status
    incident.status, incident.resolved_at = "resolved", at
    incident.mediation_case_id = incident.mediation_case_id or case_id
    session.add(_event(incident, None, "resolved", before, f"调解案件 #{case_id} 结案：{outcome or ''}", at))
    outbox.emit(session, CHANGED_TOPIC, _changed_payload(incident, at))
    await audit.record(
        session,
        actor_id=None,
        actor_name="system",
        action="incidents.incident.resolve",
        entity="incident",
        entity_id=incident.id,
        changes={"status": [before, "resolved"], "mediation_case_id": case_id},
        ip=None,
    )
    return True


# --- overrides and the policy ------------------------------------------------------------------


async def override_pairs(session: AsyncSession) -> list[tuple[str, str]]:
    """(description, corrected category) of every officer's correction, for ``suggest_rules``."""
    rows = await session.execute(
        select(IncidentOverride.description, IncidentOverride.to_category)
        .where(IncidentOverride.from_category != IncidentOverride.to_category)
        .order_by(IncidentOverride.id)
    )
    return [(d, c) for d, c in rows]


def _rule_out(rule: RoutingRule) -> schemas.RoutingRuleOut:
    return schemas.RoutingRuleOut.model_validate(rule)


async def list_rules(session: AsyncSession, actor: Principal) -> list[schemas.RoutingRuleOut]:
    if actor.role not in (*OFFICER_ROLES, Role.LIAISON_OFFICER):
        raise Forbidden("当前角色无权查看分流策略")
    rules = list(
        await session.scalars(
            select(RoutingRule).order_by(RoutingRule.category, RoutingRule.police, RoutingRule.unit_category)
        )
    )
    if not rules:
        return [
            schemas.RoutingRuleOut(
                id=0,
                sla_hours=int(r["sla_hours"]),
                **{k: r[k] for k in ("category", "police", "unit_category", "route")},
            )
            for r in routing.default_rules()
        ]
    return [_rule_out(r) for r in rules]


def _check_rule_keys(body: schemas.RoutingRuleIn) -> None:
    if body.category != routing.ANY and body.category not in classifier.CATEGORIES:
        raise field_error("category", "未知的警情类别", "unknown_category")
    units = {c.code for c in UNIT_CATEGORIES} | {routing.ANY, routing.NO_UNIT}
    if body.unit_category not in units:
        raise field_error("unit_category", "未知的单位类别", "unknown_category")
    if body.route == "self_governance" and body.unit_category == routing.NO_UNIT:
        raise field_error("route", "没有单位的警情不能移交企业自治", "unit_required")


async def add_rule(
    session: AsyncSession, actor: Principal, body: schemas.RoutingRuleIn
) -> schemas.RoutingRuleOut:
    _require(actor, POLICY_ROLES)
    _check_rule_keys(body)
    await routing.ensure_rules(session)
    rule = RoutingRule(**body.model_dump())
    session.add(rule)
    try:
        await session.flush()
    except IntegrityError as exc:
        await session.rollback()
        raise Conflict("已有相同条件的规则", code="duplicate_rule") from exc
    await audit.record_action(
        session, actor, "incidents.routing_rule.create", "incident_routing_rule", rule.id, body.model_dump()
    )
    await _commit(session)
    routing.invalidate()
    return _rule_out(rule)


async def _rule(session: AsyncSession, rule_id: int) -> RoutingRule:
    await routing.ensure_rules(session)
    rule = await session.get(RoutingRule, rule_id)
    if rule is None:
        raise NotFound("规则不存在")
    return rule


async def update_rule(
    session: AsyncSession, actor: Principal, rule_id: int, body: schemas.RoutingRulePatch
) -> schemas.RoutingRuleOut:
    _require(actor, POLICY_ROLES)
    rule = await _rule(session, rule_id)
    changes: dict[str, Any] = {}
    for name, value in body.model_dump(exclude_none=True).items():
        if getattr(rule, name) != value:
            changes[name] = [getattr(rule, name), value]
            setattr(rule, name, value)
    if rule.route == "self_governance" and rule.unit_category == routing.NO_UNIT:
        raise field_error("route", "没有单位的警情不能移交企业自治", "unit_required")
    if changes:
        await audit.record_action(
            session, actor, "incidents.routing_rule.update", "incident_routing_rule", rule.id, changes
        )
        await _commit(session)
        routing.invalidate()
    return _rule_out(rule)


async def delete_rule(session: AsyncSession, actor: Principal, rule_id: int) -> None:
    _require(actor, POLICY_ROLES)
    rule = await _rule(session, rule_id)
    if (rule.category, rule.police, rule.unit_category) == (routing.ANY,) * 3:
        raise Conflict("兜底规则（* / * / *）不能删除", code="catch_all_required")
    await session.delete(rule)
    await audit.record_action(
        session, actor, "incidents.routing_rule.delete", "incident_routing_rule", rule_id, None
    )
    await _commit(session)
    routing.invalidate()


def check_month(month: str | None) -> None:
    if month is not None:
        _check_month(month)


__all__ = ["ValidationFailed"]
