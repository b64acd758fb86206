"""Rules of mediation: teams and members, cases (from incidents, service points, units), parties,
sessions, outcomes, assignment by specialty and load, statistics.

Scope of a case: the bureau sees every case; a station officer the cases of their station; a
mediator those of their team; everyone else the cases of the units (and, for service-point staff,
the service point) in their jurisdiction. A case outside the scope answers ``NotFound``.
Writes are audited in their own transaction; ``open_case_from_incident`` is the exception: it
runs inside the incident's transaction and leaves the commit to the caller.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Select, case, false, func, or_, select, true
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from eqian.core import audit, outbox
from eqian.core.accounts import Role, User
from eqian.core.db import utcnow
from eqian.core.errors import Conflict, Forbidden, NotFound, field_error
from eqian.core.ids import mask_mobile, mask_resident_id
from eqian.core.months import bounds as month_bounds
from eqian.core.permissions import REVEAL_ROLES, Principal, Scope, ScopeKind
from eqian.mediation import schemas
from eqian.mediation.models import (
    MediationCase,
    MediationMember,
    MediationParty,
    MediationSession,
    MediationTeam,
)
from eqian.organizations.models import ServicePoint, Station, Unit
from eqian.organizations.service import unit_clause, visible_unit_ids

LOCAL_TZ = ZoneInfo("Asia/Shanghai")
OPENED_TOPIC = "mediation.case_opened"
CLOSED_TOPIC = "mediation.case_closed"
OPEN_STATUSES = ("open", "in_progress")
MIN_YEAR, MAX_YEAR = 2000, 2100

OPEN_ROLES = frozenset(
    {
        Role.BUREAU_ADMIN,
        Role.STATION_OFFICER,
        Role.LIAISON_OFFICER,
        Role.UNIT_SECURITY,
        Role.SERVICE_POINT_STAFF,
        Role.MEDIATOR,
    }
)
ASSIGN_ROLES = frozenset({Role.BUREAU_ADMIN, Role.STATION_OFFICER})
TEAM_ADMIN_ROLES = frozenset({Role.BUREAU_ADMIN, Role.STATION_OFFICER})
PARTY_REVEAL_ROLES = REVEAL_ROLES | {Role.MEDIATOR}


# --- money ---------------------------------------------------------------------------------------


def to_fen(yuan: Decimal | None) -> int | None:
    return None if yuan is None else int((yuan * 100).to_integral_value())


def to_yuan(fen: int | None) -> Decimal | None:
    return None if fen is None else (Decimal(fen) / 100).quantize(Decimal("0.01"))


def _codes(raw: str) -> list[str]:
    return [c for c in raw.split(",") if c]


# --- scope ---------------------------------------------------------------------------------------


def case_clause(scope: Scope) -> ColumnElement[bool]:
    """The cases a scope may see, as a WHERE clause on ``MediationCase``."""
    match scope.kind:
        case ScopeKind.ALL:
            return true()
        case ScopeKind.STATIONS:
            return MediationCase.station_id.in_(scope.station_ids)
        case ScopeKind.TEAM:
            return MediationCase.team_id.in_(scope.team_ids)
        case ScopeKind.SERVICE_POINTS:
            return or_(
                MediationCase.service_point_id.in_(scope.service_point_ids),
                MediationCase.unit_id.in_(visible_unit_ids(scope)),
            )
        case ScopeKind.NONE | ScopeKind.ZONE:
            # A partner agency's joint zone covers units, eco incidents and patrols, not disputes.
            return false()
        case _:
            return MediationCase.unit_id.in_(visible_unit_ids(scope))


def _require(actor: Principal, roles: frozenset[Role]) -> None:
    if actor.role not in roles:
        raise Forbidden("当前角色无权执行此操作")


async def _commit(session: AsyncSession) -> None:
    try:
        await session.commit()
    except IntegrityError as exc:
        await session.rollback()
        raise Conflict("数据已被他人修改，请刷新后重试") from exc


# --- teams ---------------------------------------------------------------------------------------


async def _open_counts(session: AsyncSession, column: Any) -> dict[int, int]:
    rows = await session.execute(
        select(column, func.count())
        .where(MediationCase.status.in_(OPEN_STATUSES), column.is_not(None))
        .group_by(column)
    )
    return {int(k): int(n) for k, n in rows}


def _team_out(team: MediationTeam, load: int) -> schemas.TeamOut:
    return schemas.TeamOut(
        id=team.id,
        name=team.name,
        kind=team.kind,
        station_id=team.station_id,
        unit_id=team.unit_id,
        specialties=_codes(team.specialties),
        active=team.active,
        open_cases=load,
    )


async def list_teams(session: AsyncSession, actor: Principal) -> list[schemas.TeamOut]:
    """Every active team (teams are public within the platform), with members and current load;
    a mediator sees their own team only, a role without scope none."""
    if actor.scope.kind is ScopeKind.NONE:
        return []
    query = select(MediationTeam).order_by(MediationTeam.id)
    if actor.scope.kind is ScopeKind.TEAM:
        query = query.where(MediationTeam.id.in_(actor.scope.team_ids))
    teams = list(await session.scalars(query))
    team_load = await _open_counts(session, MediationCase.team_id)
    member_load = await _open_counts(session, MediationCase.member_id)
    members: dict[int, list[schemas.MemberOut]] = {}
    if teams:
        for m in await session.scalars(
            select(MediationMember)
            .where(MediationMember.team_id.in_([t.id for t in teams]))
            .order_by(MediationMember.id)
        ):
            members.setdefault(m.team_id, []).append(_member_out(m, member_load.get(m.id, 0)))
    out = []
    for team in teams:
        row = _team_out(team, team_load.get(team.id, 0))
        row.members = members.get(team.id, [])
        out.append(row)
    return out


def _member_out(m: MediationMember, load: int) -> schemas.MemberOut:
    return schemas.MemberOut(
        id=m.id,
        team_id=m.team_id,
        user_id=m.user_id,
        name=m.name,
        specialties=_codes(m.specialties),
        active=m.active,
        open_cases=load,
    )


async def create_team(session: AsyncSession, actor: Principal, body: schemas.TeamIn) -> schemas.TeamOut:
    _require(actor, TEAM_ADMIN_ROLES)
    station_id = body.station_id
    if actor.scope.kind is ScopeKind.STATIONS:
        station_id = station_id or next(iter(actor.scope.station_ids))
        if station_id not in actor.scope.station_ids:
            raise field_error("station_id", "只能为本所辖区建立调解组织", "out_of_scope")
    if station_id is not None and await session.get(Station, station_id) is None:
        raise field_error("station_id", "派出所不存在", "unknown")
    if body.unit_id is not None:
        unit = await session.scalar(select(Unit).where(Unit.id == body.unit_id, unit_clause(actor.scope)))
        if unit is None:
            raise field_error("unit_id", "单位不存在", "unknown")
        station_id = unit.station_id
    if await session.scalar(select(MediationTeam.id).where(MediationTeam.name == body.name)):
        raise Conflict("已有同名调解组织", code="duplicate_name")
    team = MediationTeam(
        name=body.name,
        kind=body.kind,
        station_id=station_id,
        unit_id=body.unit_id,
        specialties=",".join(body.specialties),
        active=True,
    )
    session.add(team)
    await session.flush()
    await audit.record_action(
        session, actor, "mediation.team.create", "mediation_team", team.id, body.model_dump()
    )
    await _commit(session)
    return _team_out(team, 0)


async def add_member(
    session: AsyncSession, actor: Principal, team_id: int, body: schemas.MemberIn
) -> schemas.MemberOut:
    _require(actor, TEAM_ADMIN_ROLES)
    team = await session.get(MediationTeam, team_id)
    if team is None or (
        actor.scope.kind is ScopeKind.STATIONS and team.station_id not in actor.scope.station_ids
    ):
        raise NotFound("调解组织不存在")
    if body.user_id is not None:
        user = await session.get(User, body.user_id)
        if user is None or user.role != Role.MEDIATOR.value or user.team_id != team.id:
            raise field_error("user_id", "须为本调解组织的调解员账号", "invalid_user")
    member = MediationMember(
        team_id=team.id, user_id=body.user_id, name=body.name, specialties=",".join(body.specialties)
    )
    session.add(member)
    await session.flush()
    await audit.record_action(
        session, actor, "mediation.member.create", "mediation_member", member.id, body.model_dump()
    )
    await _commit(session)
    return _member_out(member, 0)


def _specialty_rank(specialties: str, dispute_type: str) -> int:
    """0: named specialty, 1: takes any type, 2: does not take this type."""
    codes = _codes(specialties)
    if dispute_type in codes:
        return 0
    return 1 if not codes else 2


async def choose_team(
    session: AsyncSession, *, station_id: int, unit_id: int | None, dispute_type: str, prefer_unit: bool
) -> MediationTeam | None:
    """The team for a new case: one that takes the dispute type (a named specialty before a team
    that takes anything), of the case's station (or of none), the unit's own advisors first when
    the unit itself opens the case, then the lightest current load, then the oldest team."""
    teams = list(
        await session.scalars(
            select(MediationTeam).where(
                MediationTeam.active.is_(True),
                or_(MediationTeam.station_id == station_id, MediationTeam.station_id.is_(None)),
                or_(MediationTeam.unit_id.is_(None), MediationTeam.unit_id == unit_id)
                if unit_id is not None
                else MediationTeam.unit_id.is_(None),
            )
        )
    )
    teams = [t for t in teams if _specialty_rank(t.specialties, dispute_type) < 2]
    if not teams:
        return None
    load = await _open_counts(session, MediationCase.team_id)

    def key(t: MediationTeam) -> tuple[int, int, int, int]:
        own = 0 if (prefer_unit and t.unit_id is not None) else 1
        return (own, _specialty_rank(t.specialties, dispute_type), load.get(t.id, 0), t.id)

    return min(teams, key=key)


async def choose_member(session: AsyncSession, team_id: int, dispute_type: str) -> MediationMember | None:
    members = [
        m
        for m in await session.scalars(
            select(MediationMember).where(
                MediationMember.team_id == team_id, MediationMember.active.is_(True)
            )
        )
        if _specialty_rank(m.specialties, dispute_type) < 2
    ]
    if not members:
        return None
    load = await _open_counts(session, MediationCase.member_id)
    return min(members, key=lambda m: (_specialty_rank(m.specialties, dispute_type), load.get(m.id, 0), m.id))


# --- opening cases -------------------------------------------------------------------------------


def event_payload(case_row: MediationCase, at: dt.datetime) -> dict[str, Any]:
    return {
        "case_id": case_row.id,
        "incident_id": case_row.incident_id,
        "station_id": case_row.station_id,
        "unit_id": case_row.unit_id,
        "team_id": case_row.team_id,
        "dispute_type": case_row.dispute_type,
        "outcome": case_row.outcome,
        "amount_recovered": str(to_yuan(case_row.amount_recovered_fen) or Decimal("0.00")),
        "at": at.isoformat(),
    }


async def _insert_case(
    session: AsyncSession,
    actor: Principal,
    *,
    source: str,
    incident_id: int | None,
    station_id: int,
    unit_id: int | None,
    service_point_id: int | None,
    team_id: int | None,
    dispute_type: str,
    summary: str,
    amount_in_dispute: Decimal | None,
    parties: list[schemas.PartyIn],
    now: dt.datetime | None = None,
) -> MediationCase:
    now = now or utcnow()
    member: MediationMember | None = None
    if team_id is None:
        team = await choose_team(
            session,
            station_id=station_id,
            unit_id=unit_id,
            dispute_type=dispute_type,
            prefer_unit=source == "unit",
        )
        team_id = team.id if team else None
    elif await session.get(MediationTeam, team_id) is None:
        raise field_error("team_id", "调解组织不存在", "unknown")
    if team_id is not None:
        member = await choose_member(session, team_id, dispute_type)
    row = MediationCase(
        incident_id=incident_id,
        source=source,
        station_id=station_id,
        unit_id=unit_id,
        service_point_id=service_point_id,
        team_id=team_id,
        member_id=member.id if member else None,
        dispute_type=dispute_type,
        summary=summary,
        amount_in_dispute_fen=to_fen(amount_in_dispute),
        status="open",
        amount_recovered_fen=0,
        opened_by=actor.user_id or None,
        opened_at=now,
    )
    session.add(row)
    await session.flush()
    session.add_all(
        MediationParty(case_id=row.id, name=p.name, role=p.role, id_number=p.id_number, phone=p.phone)
        for p in parties
    )
    await audit.record_action(
        session,
        actor,
        "mediation.case.open",
        "mediation_case",
        row.id,
        {
            "source": source,
            "incident_id": incident_id,
            "unit_id": unit_id,
            "team_id": team_id,
            "member_id": row.member_id,
            "dispute_type": dispute_type,
            "parties": [
                {"name": p.name, "role": p.role, "id_number": mask_resident_id(p.id_number)} for p in parties
            ],
        },
    )
    outbox.emit(session, OPENED_TOPIC, event_payload(row, now))
    return row


async def open_case_from_incident(
    session: AsyncSession,
    actor: Principal,
    *,
    incident_id: int,
    unit_id: int | None,
    station_id: int,
    dispute_type: str,
    summary: str,
    amount_in_dispute: Decimal | None,
    parties: list[schemas.PartyIn],
    team_id: int | None = None,
) -> int:
    """Open a case for an incident routed to mediation, inside the caller's transaction (no commit).

    The team is chosen by specialty and load when ``team_id`` is None. Unknown dispute types
    become ``other``; the caller (incidents) has already checked its own scope.
    """
    if dispute_type not in schemas.DISPUTE_TYPES:
        dispute_type = "other"
    row = await _insert_case(
        session,
        actor,
        source="incident",
        incident_id=incident_id,
        station_id=station_id,
        unit_id=unit_id,
        service_point_id=None,
        team_id=team_id,
        dispute_type=dispute_type,
        summary=summary[:1000] or "（无摘要）",
        amount_in_dispute=amount_in_dispute,
        parties=parties,
    )
    return row.id


async def create_case(session: AsyncSession, actor: Principal, body: schemas.CaseIn) -> schemas.CaseDetail:
    """A case opened at a service point, by a unit, or walked in to a team; commits."""
    _require(actor, OPEN_ROLES)
    unit: Unit | None = None
    if actor.role is Role.UNIT_SECURITY:
        unit_ids = actor.scope.unit_ids
        if body.unit_id is not None and body.unit_id not in unit_ids:
            raise NotFound("单位不存在")
        own = next(iter(unit_ids)) if unit_ids else None
        body = body.model_copy(update={"unit_id": own, "source": "unit"})
    if body.unit_id is not None:
        unit = await session.scalar(select(Unit).where(Unit.id == body.unit_id, unit_clause(actor.scope)))
        if unit is None and actor.role is not Role.MEDIATOR:
            raise NotFound("单位不存在")
        if unit is None:  # a mediator may name any unit a party works for
            unit = await session.get(Unit, body.unit_id)
            if unit is None:
                raise field_error("unit_id", "单位不存在", "unknown")
    service_point_id = body.service_point_id
    if actor.role is Role.SERVICE_POINT_STAFF:
        service_point_id = next(iter(actor.scope.service_point_ids), None)
    point = await session.get(ServicePoint, service_point_id) if service_point_id else None
    if service_point_id and point is None:
        raise field_error("service_point_id", "服务点不存在", "unknown")
    if body.source == "service_point" and point is None:
        raise field_error("service_point_id", "服务点受理的纠纷须注明服务点", "required")
    if body.source == "unit" and unit is None:
        raise field_error("unit_id", "单位提交的纠纷须注明单位", "required")
    team_id = body.team_id
    if actor.role is Role.MEDIATOR:
        team_id = next(iter(actor.scope.team_ids), None)
    station_id = unit.station_id if unit else point.station_id if point else body.station_id
    if station_id is None and team_id is not None:
        team = await session.get(MediationTeam, team_id)
        station_id = team.station_id if team else None
    if station_id is None:
        if actor.scope.kind is ScopeKind.STATIONS:
            station_id = next(iter(actor.scope.station_ids))
        else:
            raise field_error("station_id", "须注明派出所、单位或服务点", "required")
    if actor.scope.kind is ScopeKind.STATIONS and station_id not in actor.scope.station_ids:
        raise NotFound("派出所不存在")
    if (
        unit is None
        and point is None
        and actor.scope.kind
        not in (
            ScopeKind.ALL,
            ScopeKind.STATIONS,
            ScopeKind.TEAM,
        )
    ):  # a case without a unit or a service point would leave the caller's own scope
        raise field_error("unit_id", "须注明单位", "required")
    if await session.get(Station, station_id) is None:
        raise field_error("station_id", "派出所不存在", "unknown")
    row = await _insert_case(
        session,
        actor,
        source=body.source,
        incident_id=None,
        station_id=station_id,
        unit_id=unit.id if unit else None,
        service_point_id=point.id if point else None,
        team_id=team_id,
        dispute_type=body.dispute_type,
        summary=body.summary,
        amount_in_dispute=body.amount_in_dispute,
        parties=body.parties,
    )
    await _commit(session)
    return await get_case(session, actor, row.id)


# --- reading cases -------------------------------------------------------------------------------


def _case_query(actor: Principal) -> Select[MediationCase, str, str, str]:
    return (
        select(MediationCase, Unit.name, MediationTeam.name, MediationMember.name)
        .outerjoin(Unit, Unit.id == MediationCase.unit_id)
        .outerjoin(MediationTeam, MediationTeam.id == MediationCase.team_id)
        .outerjoin(MediationMember, MediationMember.id == MediationCase.member_id)
        .where(case_clause(actor.scope))
    )


def _case_out(
    c: MediationCase, unit_name: str | None, team_name: str | None, member_name: str | None
) -> schemas.CaseOut:
    return schemas.CaseOut(
        id=c.id,
        incident_id=c.incident_id,
        source=c.source,
        station_id=c.station_id,
        unit_id=c.unit_id,
        unit_name=unit_name,
        service_point_id=c.service_point_id,
        team_id=c.team_id,
        team_name=team_name,
        member_id=c.member_id,
        member_name=member_name,
        dispute_type=c.dispute_type,
        summary=c.summary,
        amount_in_dispute=to_yuan(c.amount_in_dispute_fen),
        status=c.status,
        outcome=c.outcome,
        referred_to=c.referred_to,
        amount_recovered=to_yuan(c.amount_recovered_fen) or Decimal("0.00"),
        opened_at=c.opened_at,
        closed_at=c.closed_at,
    )


async def list_cases(
    session: AsyncSession,
    actor: Principal,
    *,
    status: str | None = None,
    outcome: str | None = None,
    team_id: int | None = None,
    station_id: int | None = None,
    unit_id: int | None = None,
    incident_id: int | None = None,
    dispute_type: str | None = None,
    month: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[schemas.CaseOut], int]:
    """Cases in scope, newest first; ``status=active`` means open or in progress; ``month`` picks
    the cases opened in that local month."""
    query = _case_query(actor)
    if status == "active":
        query = query.where(MediationCase.status.in_(OPEN_STATUSES))
    elif status:
        query = query.where(MediationCase.status == status)
    for column, value in (
        (MediationCase.outcome, outcome),
        (MediationCase.team_id, team_id),
        (MediationCase.station_id, station_id),
        (MediationCase.unit_id, unit_id),
        (MediationCase.incident_id, incident_id),
        (MediationCase.dispute_type, dispute_type),
    ):
        if value is not None:
            query = query.where(column == value)
    if month:
        lo, hi = month_bounds(month)
        query = query.where(MediationCase.opened_at >= lo, MediationCase.opened_at < hi)
    total = await session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = await session.execute(
        query.order_by(MediationCase.opened_at.desc(), MediationCase.id.desc()).limit(limit).offset(offset)
    )
    return [_case_out(*r) for r in rows.all()], total


async def _load_case(
    session: AsyncSession, actor: Principal, case_id: int, *, for_update: bool = False
) -> MediationCase:
    query = select(MediationCase).where(MediationCase.id == case_id, case_clause(actor.scope))
    if for_update:
        query = query.with_for_update()
    row = await session.scalar(query)
    if row is None:
        raise NotFound("调解案件不存在")
    return row


async def get_case(session: AsyncSession, actor: Principal, case_id: int) -> schemas.CaseDetail:
    row = (await session.execute(_case_query(actor).where(MediationCase.id == case_id))).first()
    if row is None:
        raise NotFound("调解案件不存在")
    c = row[0]
    out = schemas.CaseDetail(
        **_case_out(*row).model_dump(),
        agreement_text=c.agreement_text,
        agreement_amount=to_yuan(c.agreement_amount_fen),
        payment_schedule=c.payment_schedule,
        outcome_note=c.outcome_note,
    )
    out.parties = [
        schemas.PartyOut(
            id=p.id,
            name=p.name,
            role=p.role,
            id_number=mask_resident_id(p.id_number),
            phone=mask_mobile(p.phone),
        )
        for p in await session.scalars(
            select(MediationParty).where(MediationParty.case_id == case_id).order_by(MediationParty.id)
        )
    ]
    sessions = await session.execute(
        select(MediationSession, User.display_name)
        .outerjoin(User, User.id == MediationSession.actor_id)
        .where(MediationSession.case_id == case_id)
        .order_by(MediationSession.held_at, MediationSession.id)
    )
    out.sessions = [
        schemas.SessionOut(id=s.id, held_at=s.held_at, place=s.place, note=s.note, actor_name=name)
        for s, name in sessions.all()
    ]
    return out


async def can_handle(session: AsyncSession, actor: Principal, case_row: MediationCase) -> bool:
    """Who records sessions and outcomes: the bureau, the station's officers, the case's team, and
    a unit's security head for a case its own advisors handle (mediation inside the enterprise)."""
    if actor.role in (Role.BUREAU_ADMIN, Role.STATION_OFFICER, Role.MEDIATOR):
        return True  # the scope has already narrowed the case to their station / team
    if actor.role is Role.UNIT_SECURITY and case_row.team_id is not None:
        team = await session.get(MediationTeam, case_row.team_id)
        return team is not None and team.unit_id is not None and team.unit_id in actor.scope.unit_ids
    return False


async def _require_handler(session: AsyncSession, actor: Principal, case_row: MediationCase) -> None:
    if not await can_handle(session, actor, case_row):
        raise Forbidden("当前角色无权处理此案件")


async def add_session(
    session: AsyncSession, actor: Principal, case_id: int, body: schemas.SessionIn
) -> schemas.CaseDetail:
    row = await _load_case(session, actor, case_id, for_update=True)
    await _require_handler(session, actor, row)
    if row.status == "closed":
        raise Conflict("案件已结案", code="invalid_state")
    now = utcnow()
    held_at = body.held_at or now
    if held_at > now + dt.timedelta(minutes=5) or held_at < row.opened_at - dt.timedelta(days=1):
        raise field_error("held_at", "调解时间须在立案之后、当前时间之前", "out_of_range")
    entry = MediationSession(
        case_id=row.id, held_at=held_at, place=body.place, note=body.note, actor_id=actor.user_id or None
    )
    session.add(entry)
    old = row.status
    row.status = "in_progress"
    await session.flush()
    await audit.record_action(
        session,
        actor,
        "mediation.case.session",
        "mediation_case",
        row.id,
        {"session_id": entry.id, "status": [old, row.status]},
    )
    await _commit(session)
    return await get_case(session, actor, case_id)


async def record_outcome(
    session: AsyncSession, actor: Principal, case_id: int, body: schemas.OutcomeIn
) -> schemas.CaseDetail:
    """Close the case: an agreement (text, amount, payment schedule), failed, or referred (to a
    court or labour arbitration). Emits ``mediation.case_closed`` for the incident it came from."""
    row = await _load_case(session, actor, case_id, for_update=True)
    await _require_handler(session, actor, row)
    if row.status == "closed":
        raise Conflict("案件已结案", code="invalid_state")
    if body.outcome == "agreement" and not body.agreement_text:
        raise field_error("agreement_text", "调解成功须填写协议内容", "required")
    if body.outcome == "referred" and body.referred_to is None:
        raise field_error("referred_to", "移交须注明去向（法院、劳动仲裁等）", "required")
    if body.outcome != "referred" and body.referred_to is not None:
        raise field_error("referred_to", "仅移交时填写去向", "not_allowed")
    if body.outcome != "agreement" and (body.agreement_text or body.agreement_amount is not None):
        raise field_error("agreement_text", "仅调解成功时填写协议", "not_allowed")
    recovered = to_fen(body.amount_recovered) or 0
    agreed = to_fen(body.agreement_amount)
    if agreed is not None and recovered > agreed:
        raise field_error("amount_recovered", "挽回金额不能超过协议金额", "out_of_range")
    now = utcnow()
    row.status, row.outcome, row.closed_at = "closed", body.outcome, now
    row.referred_to = body.referred_to
    row.agreement_text = body.agreement_text
    row.agreement_amount_fen = agreed
    row.payment_schedule = body.payment_schedule
    row.amount_recovered_fen = recovered
    row.outcome_note = body.note
    await audit.record_action(
        session,
        actor,
        "mediation.case.close",
        "mediation_case",
        row.id,
        {
            "outcome": body.outcome,
            "referred_to": body.referred_to,
            "agreement_amount": str(body.agreement_amount) if body.agreement_amount is not None else None,
            "amount_recovered": str(body.amount_recovered),
        },
    )
    outbox.emit(session, CLOSED_TOPIC, event_payload(row, now))
    await _commit(session)
    return await get_case(session, actor, case_id)


async def assign_case(
    session: AsyncSession, actor: Principal, case_id: int, body: schemas.AssignIn
) -> schemas.CaseDetail:
    row = await _load_case(session, actor, case_id, for_update=True)
    _require(actor, ASSIGN_ROLES)
    if row.status == "closed":
        raise Conflict("案件已结案", code="invalid_state")
    team = await session.get(MediationTeam, body.team_id)
    if team is None or not team.active:
        raise field_error("team_id", "调解组织不存在", "unknown")
    member_id = body.member_id
    if member_id is not None:
        member = await session.get(MediationMember, member_id)
        if member is None or member.team_id != team.id:
            raise field_error("member_id", "调解员不属于该组织", "invalid_member")
    else:
        chosen = await choose_member(session, team.id, row.dispute_type)
        member_id = chosen.id if chosen else None
    old = [row.team_id, row.member_id]
    row.team_id, row.member_id = team.id, member_id
    await audit.record_action(
        session,
        actor,
        "mediation.case.assign",
        "mediation_case",
        row.id,
        {"team_id": [old[0], team.id], "member_id": [old[1], member_id]},
    )
    await _commit(session)
    return await get_case(session, actor, case_id)


async def reveal_party(
    session: AsyncSession, actor: Principal, case_id: int, party_id: int
) -> schemas.RevealedParty:
    """The one path to a party's unmasked ID number and phone: allowed roles only, always audited."""
    row = await _load_case(session, actor, case_id)
    party = await session.scalar(
        select(MediationParty).where(MediationParty.id == party_id, MediationParty.case_id == row.id)
    )
    if party is None:
        raise NotFound("当事人不存在")
    _require(actor, PARTY_REVEAL_ROLES)
    await audit.record_action(
        session,
        actor,
        "personal_data.reveal",
        "mediation_party",
        party.id,
        {"case_id": row.id, "fields": ["id_number", "phone"]},
    )
    await _commit(session)
    return schemas.RevealedParty(id=party.id, name=party.name, id_number=party.id_number, phone=party.phone)


# --- statistics ----------------------------------------------------------------------------------


def month_expr(column: Any, dialect: str) -> ColumnElement[str]:
    # Asia/Shanghai has had no daylight saving since 1991: local month = UTC + 8 hours.
    if dialect == "postgresql":
        return func.to_char(func.timezone("Asia/Shanghai", column), "YYYY-MM")
    return func.strftime("%Y-%m", column, "+8 hours")


def local_bounds(
    since: dt.date | None, until: dt.date | None
) -> tuple[dt.datetime | None, dt.datetime | None]:
    for name, day in (("from", since), ("to", until)):
        if day is not None and not MIN_YEAR <= day.year <= MAX_YEAR:
            raise field_error(name, f"日期须在 {MIN_YEAR}–{MAX_YEAR} 年之间", "out_of_range")
    if since and until and since > until:
        raise field_error("from", "开始日期不能晚于结束日期", "invalid_range")
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
    station_id: int | None = None,
    team_id: int | None = None,
) -> tuple[list[schemas.StatsRow], schemas.StatsRow]:
    """Per team, station, month or dispute type (Asia/Shanghai, dates inclusive): cases opened in
    the period, and cases concluded in it with their outcomes and the amount recovered; the
    success rate is agreements over concluded cases. Returns the rows and their total."""
    lo, hi = local_bounds(since, until)
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"

    def key_of(column: Any) -> Any:
        if group == "team":
            return func.coalesce(MediationCase.team_id, 0)
        if group == "station":
            return MediationCase.station_id
        if group == "dispute_type":
            return MediationCase.dispute_type
        return month_expr(column, dialect)

    def window(column: Any) -> list[ColumnElement[bool]]:
        clauses: list[ColumnElement[bool]] = [column.is_not(None)]
        if lo is not None:
            clauses.append(column >= lo)
        if hi is not None:
            clauses.append(column < hi)
        return clauses

    base: list[ColumnElement[bool]] = [case_clause(actor.scope)]
    if station_id is not None:
        base.append(MediationCase.station_id == station_id)
    if team_id is not None:
        base.append(MediationCase.team_id == team_id)
    empty = {"opened": 0, "mediated": 0, "success": 0, "failed": 0, "referred": 0, "amount": 0}
    counts: dict[str, dict[str, int]] = {}
    opened_key = key_of(MediationCase.opened_at).label("k")
    for k, n in await session.execute(
        select(opened_key, func.count()).where(*base, *window(MediationCase.opened_at)).group_by(opened_key)
    ):
        counts.setdefault(str(k), dict(empty))["opened"] = int(n)
    closed_key = key_of(MediationCase.closed_at).label("k")

    def is_(outcome: str) -> Any:
        return func.sum(case((MediationCase.outcome == outcome, 1), else_=0))

    for k, n, ok, failed, referred, amount in await session.execute(
        select(
            closed_key,
            func.count(),
            is_("agreement"),
            is_("failed"),
            is_("referred"),
            func.coalesce(func.sum(MediationCase.amount_recovered_fen), 0),
        )
        .where(*base, MediationCase.status == "closed", *window(MediationCase.closed_at))
        .group_by(closed_key)
    ):
        row = counts.setdefault(str(k), dict(empty))
        row.update(
            mediated=int(n), success=int(ok or 0), failed=int(failed or 0), referred=int(referred or 0)
        )
        row["amount"] = int(amount or 0)
    labels: dict[str, str] = {}
    if group == "team" and counts:
        ids = [int(k) for k in counts]
        labels = {
            str(i): n
            for i, n in (
                await session.execute(
                    select(MediationTeam.id, MediationTeam.name).where(MediationTeam.id.in_(ids))
                )
            ).all()
        }
        labels["0"] = "未分派"
    elif group == "station" and counts:
        ids = [int(k) for k in counts]
        labels = {
            str(i): n
            for i, n in (
                await session.execute(select(Station.id, Station.name).where(Station.id.in_(ids)))
            ).all()
        }
    elif group == "dispute_type":
        labels = dict(schemas.DISPUTE_TYPES)
    numeric = group in ("team", "station")
    ordered = sorted(counts, key=lambda k: (int(k), "") if numeric else (0, k))
    rows = [_stats_row(k, labels.get(k, k), counts[k]) for k in ordered]
    total: dict[str, int] = dict(empty)
    for c in counts.values():
        for name in total:
            total[name] += c[name]
    return rows, _stats_row("total", "合计", total)


def _stats_row(key: str, label: str, c: dict[str, int]) -> schemas.StatsRow:
    rate = round(100.0 * c["success"] / c["mediated"], 1) if c["mediated"] else None
    return schemas.StatsRow(
        key=key,
        label=label,
        opened=c["opened"],
        mediated=c["mediated"],
        success=c["success"],
        failed=c["failed"],
        referred=c["referred"],
        success_rate=rate,
        amount_recovered=to_yuan(c["amount"]) or Decimal("0.00"),
    )
