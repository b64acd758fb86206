"""Rules of police–enterprise activities. Every read and write is scoped to the actor's jurisdiction.

Who sees what: the bureau everything; a station officer its station's activities and those its
units are invited to; a liaison officer, a unit's security head and service-point staff the
activities their units are invited to (and only those units' invitations); mediators and partner
officers none. Plan, edit, cancel, minutes and attendance: the bureau and the station's officers;
a liaison officer may also record attendance for its units; a unit answers its own invitation.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Integer, and_, case, false, func, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from eqian.activities import schemas
from eqian.activities.models import Activity, ActivityInvitation, ActivityIssue
from eqian.core import audit, outbox
from eqian.core.accounts import Role
from eqian.core.db import utcnow
from eqian.core.errors import Conflict, Forbidden, NotFound, field_error
from eqian.core.permissions import Principal, ScopeKind
from eqian.organizations.models import Station, Unit, UnitCategory
from eqian.organizations.service import unit_clause, visible_unit_ids

LOCAL_TZ = ZoneInfo("Asia/Shanghai")
MANAGE_ROLES = (Role.BUREAU_ADMIN, Role.STATION_OFFICER)
ATTENDANCE_ROLES = (*MANAGE_ROLES, Role.LIAISON_OFFICER)
ROUNDTABLE_MINUTES = 120
KIND_TITLES = {
    "roundtable": "警企恳谈会",
    "industry_meeting": "行业例会",
    "joint_patrol": "联合巡逻",
    "safety_training": "安全培训",
    "antifraud_training": "反诈培训",
}
_NOT_FOUND = "活动不存在"
INVITED_TOPIC = "activities.invited"  # payload: activity_id, unit_ids (the newly invited)
CANCELLED_TOPIC = "activities.cancelled"  # payload: activity_id


# --- scope -------------------------------------------------------------------------------------


def _invited_in_scope(actor: Principal) -> ColumnElement[bool]:
    return Activity.id.in_(
        select(ActivityInvitation.activity_id).where(
            ActivityInvitation.unit_id.in_(visible_unit_ids(actor.scope))
        )
    )


def activity_clause(actor: Principal) -> ColumnElement[bool]:
    """The activities an actor may see, as a WHERE clause on ``Activity``."""
    match actor.scope.kind:
        case ScopeKind.ALL:
            return true()
        case ScopeKind.STATIONS:
            return or_(Activity.station_id.in_(actor.scope.station_ids), _invited_in_scope(actor))
        case ScopeKind.LIAISON | ScopeKind.UNITS | ScopeKind.SERVICE_POINTS:
            return _invited_in_scope(actor)
        case _:
            return false()


def can_manage(actor: Principal, activity: Activity) -> bool:
    if actor.scope.kind is ScopeKind.ALL and actor.role is Role.BUREAU_ADMIN:
        return True
    return (
        actor.role is Role.STATION_OFFICER
        and activity.station_id is not None
        and activity.station_id in actor.scope.station_ids
    )


def _require_manage(actor: Principal, activity: Activity) -> None:
    actor.require_role(*MANAGE_ROLES)
    if not can_manage(actor, activity):
        raise Forbidden("只有本所民警或分局可以管理此活动", code="forbidden")


def _require_station(actor: Principal, station_id: int | None) -> None:
    actor.require_role(*MANAGE_ROLES)
    if actor.role is Role.STATION_OFFICER and (
        station_id is None or station_id not in actor.scope.station_ids
    ):
        raise Forbidden("只能为本所安排活动", code="forbidden")


def week_monday(day: dt.date) -> dt.date:
    return day - dt.timedelta(days=day.weekday())


def local_today() -> dt.date:
    return utcnow().astimezone(LOCAL_TZ).date()


# --- reads -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ActivityFilters:
    station_id: int | None = None
    kind: str | None = None
    status: str | None = None
    unit_id: int | None = None
    starts_from: dt.datetime | None = None
    starts_before: dt.datetime | None = None
    limit: int = 50
    offset: int = 0


def _invited_count() -> Any:
    return (
        select(func.count(ActivityInvitation.id))
        .where(ActivityInvitation.activity_id == Activity.id)
        .correlate(Activity)
        .scalar_subquery()
    )


def _activity_query() -> Any:
    return (
        select(Activity, Station.name, UnitCategory.name_zh, _invited_count())
        .outerjoin(Station, Station.id == Activity.station_id)
        .outerjoin(UnitCategory, UnitCategory.code == Activity.category_code)
    )


def _out(
    a: Activity, station_name: str | None, category_name: str | None, invited: int
) -> schemas.ActivityOut:
    return schemas.ActivityOut(
        id=a.id,
        station_id=a.station_id,
        station_name=station_name,
        kind=a.kind,
        title=a.title,
        category_code=a.category_code,
        category_name=category_name,
        starts_at=a.starts_at,
        ends_at=a.ends_at,
        location=a.location,
        organiser_id=a.organiser_id,
        status=a.status,
        minutes=a.minutes,
        week_start=a.week_start,
        invited_count=invited or 0,
    )


async def list_activities(
    session: AsyncSession, actor: Principal, f: ActivityFilters
) -> tuple[list[schemas.ActivityOut], int]:
    conds: list[ColumnElement[bool]] = [activity_clause(actor)]
    if f.station_id is not None:
        conds.append(Activity.station_id == f.station_id)
    if f.kind is not None:
        conds.append(Activity.kind == f.kind)
    if f.status is not None:
        conds.append(Activity.status == f.status)
    if f.unit_id is not None:
        conds.append(
            Activity.id.in_(
                select(ActivityInvitation.activity_id).where(
                    ActivityInvitation.unit_id == f.unit_id,
                    ActivityInvitation.unit_id.in_(visible_unit_ids(actor.scope)),
                )
            )
        )
    if f.starts_from is not None:
        conds.append(Activity.starts_at >= f.starts_from)
    if f.starts_before is not None:
        conds.append(Activity.starts_at < f.starts_before)
    total = (await session.execute(select(func.count(Activity.id)).where(*conds))).scalar_one()
    rows = await session.execute(
        _activity_query()
        .where(*conds)
        .order_by(Activity.starts_at, Activity.id)
        .limit(f.limit)
        .offset(f.offset)
    )
    return [_out(*row) for row in rows.all()], total


async def _load(
    session: AsyncSession, actor: Principal, activity_id: int, *, for_update: bool = False
) -> Activity:
    stmt = select(Activity).where(Activity.id == activity_id, activity_clause(actor))
    if for_update and session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(of=Activity)
    activity = (await session.execute(stmt)).scalar_one_or_none()
    if activity is None:
        raise NotFound(_NOT_FOUND)
    return activity


def _invitation_clause(actor: Principal, activity: Activity) -> ColumnElement[bool]:
    """All invitations for those who manage the activity, else only the actor's own units'."""
    if can_manage(actor, activity):
        return true()
    return ActivityInvitation.unit_id.in_(visible_unit_ids(actor.scope))


async def _invitations(
    session: AsyncSession, actor: Principal, activity: Activity
) -> list[schemas.InvitationOut]:
    rows = await session.execute(
        select(ActivityInvitation, Unit.name)
        .join(Unit, Unit.id == ActivityInvitation.unit_id)
        .where(ActivityInvitation.activity_id == activity.id, _invitation_clause(actor, activity))
        .order_by(Unit.name, ActivityInvitation.id)
    )
    return [_invitation_out(inv, name) for inv, name in rows.all()]


def _invitation_out(inv: ActivityInvitation, unit_name: str) -> schemas.InvitationOut:
    return schemas.InvitationOut(
        id=inv.id,
        activity_id=inv.activity_id,
        unit_id=inv.unit_id,
        unit_name=unit_name,
        response=inv.response,
        responded_at=inv.responded_at,
        attended=inv.attended,
        attendee_count=inv.attendee_count,
        attendee_names=inv.attendee_names,
        recorded_at=inv.recorded_at,
    )


async def _issues(session: AsyncSession, actor: Principal, activity: Activity) -> list[schemas.IssueOut]:
    clause: ColumnElement[bool] = (
        true()
        if can_manage(actor, activity)
        else or_(ActivityIssue.unit_id.is_(None), ActivityIssue.unit_id.in_(visible_unit_ids(actor.scope)))
    )
    rows = await session.execute(
        select(ActivityIssue, Unit.name)
        .outerjoin(Unit, Unit.id == ActivityIssue.unit_id)
        .where(ActivityIssue.activity_id == activity.id, clause)
        .order_by(ActivityIssue.id)
    )
    return [
        schemas.IssueOut(
            id=i.id,
            activity_id=i.activity_id,
            unit_id=i.unit_id,
            unit_name=name,
            text=i.text,
            raised_by_id=i.raised_by_id,
            created_at=i.created_at,
        )
        for i, name in rows.all()
    ]


async def get_activity(session: AsyncSession, actor: Principal, activity_id: int) -> schemas.ActivityDetail:
    row = (
        await session.execute(_activity_query().where(Activity.id == activity_id, activity_clause(actor)))
    ).one_or_none()
    if row is None:
        raise NotFound(_NOT_FOUND)
    activity = row[0]
    out = _out(*row)
    return schemas.ActivityDetail(
        **out.model_dump(),
        invitations=await _invitations(session, actor, activity),
        issues=await _issues(session, actor, activity),
    )


async def list_issues(session: AsyncSession, actor: Principal, activity_id: int) -> list[schemas.IssueOut]:
    activity = await _load(session, actor, activity_id)
    return await _issues(session, actor, activity)


# --- writes ------------------------------------------------------------------------------------


async def _check_category(session: AsyncSession, code: str | None) -> None:
    if code is not None and await session.get(UnitCategory, code) is None:
        raise field_error("category_code", "单位类别不存在", "unknown")


async def _check_station(session: AsyncSession, station_id: int | None) -> None:
    if station_id is not None and await session.get(Station, station_id) is None:
        raise field_error("station_id", "派出所不存在", "unknown")


def _audit_changes(activity: Activity) -> dict[str, Any]:
    return {
        "station_id": activity.station_id,
        "kind": activity.kind,
        "title": activity.title,
        "category_code": activity.category_code,
        "starts_at": activity.starts_at.isoformat(),
        "status": activity.status,
    }


async def _refetch(session: AsyncSession, actor: Principal, activity_id: int) -> schemas.ActivityOut:
    row = (await session.execute(_activity_query().where(Activity.id == activity_id))).one()
    return _out(*row)


async def create_activity(
    session: AsyncSession, actor: Principal, body: schemas.ActivityIn
) -> schemas.ActivityOut:
    _require_station(actor, body.station_id)
    await _check_station(session, body.station_id)
    await _check_category(session, body.category_code)
    if body.kind == "roundtable":
        if body.station_id is None:
            raise field_error("station_id", "恳谈会须属于一个派出所", "required")
        week = week_monday(body.starts_at.astimezone(LOCAL_TZ).date())
        taken = await session.execute(
            select(Activity.id).where(Activity.station_id == body.station_id, Activity.week_start == week)
        )
        if taken.first() is not None:
            raise Conflict("本周已安排警企恳谈会", code="week_taken")
    else:
        week = None
    activity = Activity(
        station_id=body.station_id,
        kind=body.kind,
        title=body.title,
        category_code=body.category_code,
        starts_at=body.starts_at,
        ends_at=body.ends_at,
        location=body.location,
        organiser_id=actor.user_id or None,
        status="planned",
        minutes="",
        week_start=week,
    )
    session.add(activity)
    await session.flush()
    await audit.record(
        session,
        actor_id=actor.user_id,
        actor_name=actor.username,
        action="activity.create",
        entity="activity",
        entity_id=activity.id,
        changes=_audit_changes(activity),
        ip=actor.ip,
    )
    await session.commit()
    return await _refetch(session, actor, activity.id)


async def update_activity(
    session: AsyncSession, actor: Principal, activity_id: int, body: schemas.ActivityUpdate
) -> schemas.ActivityOut:
    activity = await _load(session, actor, activity_id, for_update=True)
    _require_manage(actor, activity)
    changes = body.model_dump(exclude_unset=True)
    for key in ("title", "starts_at", "ends_at", "status"):
        if key in changes and changes[key] is None:
            raise field_error(key, "不能为空", "required")
    if activity.status == "cancelled" and changes.get("status", "cancelled") != "cancelled":
        raise Conflict("活动已取消", code="cancelled")
    for moment in ("starts_at", "ends_at"):
        if changes.get(moment) is not None and changes[moment].tzinfo is None:
            raise field_error(moment, "时间须带时区")
    starts = changes.get("starts_at", activity.starts_at)
    ends = changes.get("ends_at", activity.ends_at)
    if ends < starts:
        raise field_error("ends_at", "结束时间不能早于开始时间")
    if activity.kind == "roundtable" and "starts_at" in changes:
        week = week_monday(starts.astimezone(LOCAL_TZ).date())
        if week != activity.week_start:
            taken = await session.execute(
                select(Activity.id).where(
                    Activity.station_id == activity.station_id,
                    Activity.week_start == week,
                    Activity.id != activity.id,
                )
            )
            if taken.first() is not None:
                raise Conflict("本周已安排警企恳谈会", code="week_taken")
            activity.week_start = week
    cancelling = changes.get("status") == "cancelled" and activity.status != "cancelled"
    for key, value in changes.items():
        setattr(activity, key, "" if value is None else value)
    if cancelling:
        outbox.emit(session, CANCELLED_TOPIC, {"activity_id": activity.id})
    await audit.record(
        session,
        actor_id=actor.user_id,
        actor_name=actor.username,
        action="activity.cancel" if changes.get("status") == "cancelled" else "activity.update",
        entity="activity",
        entity_id=activity.id,
        changes={k: (v.isoformat() if isinstance(v, dt.datetime) else v) for k, v in changes.items()},
        ip=actor.ip,
    )
    await session.commit()
    return await _refetch(session, actor, activity.id)


async def _category_units(session: AsyncSession, station_id: int, category_code: str) -> list[int]:
    rows = await session.execute(
        select(Unit.id)
        .where(Unit.station_id == station_id, Unit.category_code == category_code, Unit.status == "active")
        .order_by(Unit.id)
    )
    return list(rows.scalars())


async def invite_units(
    session: AsyncSession, actor: Principal, activity_id: int, body: schemas.InviteIn
) -> list[schemas.InvitationOut]:
    """Invite units: the listed ones, or every active unit of the activity's category in its station.
    Units already invited are left as they are."""
    activity = await _load(session, actor, activity_id, for_update=True)
    _require_manage(actor, activity)
    if activity.status == "cancelled":
        raise Conflict("活动已取消", code="cancelled")
    if body.unit_ids is None:
        if activity.station_id is None or activity.category_code is None:
            raise field_error("unit_ids", "此活动没有所属派出所和行业，请列出要邀请的单位", "required")
        unit_ids = await _category_units(session, activity.station_id, activity.category_code)
    else:
        unit_ids = sorted(set(body.unit_ids))
        allowed_conds: list[ColumnElement[bool]] = [Unit.id.in_(unit_ids), unit_clause(actor.scope)]
        if activity.station_id is not None and actor.role is Role.STATION_OFFICER:
            allowed_conds.append(Unit.station_id == activity.station_id)
        found = set((await session.execute(select(Unit.id).where(*allowed_conds))).scalars())
        missing = [u for u in unit_ids if u not in found]
        if missing:
            raise field_error("unit_ids", f"{len(missing)} 个单位不存在或不在您的辖区", "unknown")
    already = set(
        (
            await session.execute(
                select(ActivityInvitation.unit_id).where(ActivityInvitation.activity_id == activity.id)
            )
        ).scalars()
    )
    new = [u for u in unit_ids if u not in already]
    session.add_all([ActivityInvitation(activity_id=activity.id, unit_id=u, response="invited") for u in new])
    await session.flush()
    if new:
        outbox.emit(session, INVITED_TOPIC, {"activity_id": activity.id, "unit_ids": new})
    await audit.record(
        session,
        actor_id=actor.user_id,
        actor_name=actor.username,
        action="activity.invite",
        entity="activity",
        entity_id=activity.id,
        changes={"unit_ids": new},
        ip=actor.ip,
    )
    await session.commit()
    return await _invitations(session, actor, activity)


def next_category(rotation: list[str], last: str | None) -> str:
    """The category after ``last`` in the rotation, wrapping round; the first when ``last`` is not in it."""
    if last not in rotation:
        return rotation[0]
    return rotation[(rotation.index(last) + 1) % len(rotation)]


async def schedule_roundtables(
    session: AsyncSession, actor: Principal, body: schemas.ScheduleIn, *, today: dt.date | None = None
) -> schemas.ScheduleOut:
    """Plan the next ``weeks`` weekly roundtables of a station, one per week, rotating through the
    categories that have active units there (in the categories' order) and continuing from the last
    roundtable held or planned before. Weeks that already have one are skipped, so a second call
    plans nothing new."""
    _require_station(actor, body.station_id)
    await _check_station(session, body.station_id)
    rotation = list(
        (
            await session.execute(
                select(UnitCategory.code)
                .where(
                    UnitCategory.code.in_(
                        select(Unit.category_code).where(
                            Unit.station_id == body.station_id, Unit.status == "active"
                        )
                    )
                )
                .order_by(UnitCategory.sort_order, UnitCategory.code)
            )
        ).scalars()
    )
    first = week_monday(body.start or today or local_today())
    weeks = [first + dt.timedelta(weeks=i) for i in range(body.weeks)]
    if not rotation:
        raise field_error("station_id", "该派出所没有在营单位，无法安排恳谈会", "empty")
    taken = {
        week: (None if status == "cancelled" else category)
        for week, category, status in (
            await session.execute(
                select(Activity.week_start, Activity.category_code, Activity.status).where(
                    Activity.station_id == body.station_id, Activity.week_start.in_(weeks)
                )
            )
        ).all()
    }
    last = (
        await session.execute(
            select(Activity.category_code)
            .where(
                Activity.station_id == body.station_id,
                Activity.kind == "roundtable",
                Activity.week_start < first,
                Activity.status != "cancelled",
            )
            .order_by(Activity.week_start.desc())
            .limit(1)
        )
    ).scalar_one_or_none()
    names: dict[str, str] = dict(
        (await session.execute(select(UnitCategory.code, UnitCategory.name_zh))).all()
    )
    created: list[Activity] = []
    skipped: list[dt.date] = []
    for week in weeks:
        if week in taken:
            skipped.append(week)
            last = taken[week] or last  # a planned or held roundtable moves the rotation on
            continue
        category = last = next_category(rotation, last)
        day = week + dt.timedelta(days=body.weekday)
        starts = dt.datetime.combine(day, dt.time(body.hour), LOCAL_TZ).astimezone(dt.UTC)
        activity = Activity(
            station_id=body.station_id,
            kind="roundtable",
            title=f"警企恳谈会·{names.get(category, category)}",
            category_code=category,
            starts_at=starts,
            ends_at=starts + dt.timedelta(minutes=ROUNDTABLE_MINUTES),
            location=body.location,
            organiser_id=actor.user_id or None,
            status="planned",
            minutes="",
            week_start=week,
        )
        session.add(activity)
        await session.flush()
        units = await _category_units(session, body.station_id, category)
        session.add_all(
            [ActivityInvitation(activity_id=activity.id, unit_id=u, response="invited") for u in units]
        )
        if units:
            outbox.emit(session, INVITED_TOPIC, {"activity_id": activity.id, "unit_ids": units})
        created.append(activity)
    await session.flush()
    await audit.record(
        session,
        actor_id=actor.user_id,
        actor_name=actor.username,
        action="activity.schedule_roundtables",
        entity="station",
        entity_id=body.station_id,
        changes={"created": [a.id for a in created], "skipped_weeks": [w.isoformat() for w in skipped]},
        ip=actor.ip,
    )
    await session.commit()
    out = [await _refetch(session, actor, a.id) for a in created]
    return schemas.ScheduleOut(created=out, skipped_weeks=skipped)


async def _load_invitation(
    session: AsyncSession, actor: Principal, activity: Activity, invitation_id: int
) -> tuple[ActivityInvitation, str]:
    row = (
        await session.execute(
            select(ActivityInvitation, Unit.name)
            .join(Unit, Unit.id == ActivityInvitation.unit_id)
            .where(
                ActivityInvitation.id == invitation_id,
                ActivityInvitation.activity_id == activity.id,
                _invitation_clause(actor, activity),
            )
        )
    ).one_or_none()
    if row is None:
        raise NotFound("邀请不存在")
    return row[0], row[1]


async def respond(
    session: AsyncSession, actor: Principal, activity_id: int, invitation_id: int, body: schemas.RespondIn
) -> schemas.InvitationOut:
    """A unit's security head accepts or declines its own unit's invitation, before the activity."""
    activity = await _load(session, actor, activity_id)
    inv, unit_name = await _load_invitation(session, actor, activity, invitation_id)
    if actor.role is not Role.UNIT_SECURITY or inv.unit_id not in actor.scope.unit_ids:
        raise Forbidden("只有受邀单位本身可以答复邀请", code="forbidden")
    if activity.status != "planned":
        raise Conflict("活动已结束或已取消，不能再答复", code="not_planned")
    inv.response = body.response
    inv.responded_at = utcnow()
    await audit.record(
        session,
        actor_id=actor.user_id,
        actor_name=actor.username,
        action="activity.respond",
        entity="activity_invitation",
        entity_id=inv.id,
        changes={"activity_id": activity.id, "unit_id": inv.unit_id, "response": body.response},
        ip=actor.ip,
    )
    await session.commit()
    return _invitation_out(inv, unit_name)


async def record_attendance(
    session: AsyncSession, actor: Principal, activity_id: int, invitation_id: int, body: schemas.AttendanceIn
) -> schemas.InvitationOut:
    """After the activity has started: whether the unit came and how many. Marks the activity held."""
    actor.require_role(*ATTENDANCE_ROLES)
    activity = await _load(session, actor, activity_id, for_update=True)
    inv, unit_name = await _load_invitation(session, actor, activity, invitation_id)
    if actor.role is not Role.LIAISON_OFFICER:
        _require_manage(actor, activity)
    if activity.status == "cancelled":
        raise Conflict("活动已取消", code="cancelled")
    if activity.starts_at > utcnow():
        raise Conflict("活动尚未开始，不能登记出席", code="not_started")
    before = {"attended": inv.attended, "attendee_count": inv.attendee_count}
    inv.attended = body.attended
    inv.attendee_count = body.attendee_count if body.attended else 0
    inv.attendee_names = body.attendee_names if body.attended else ""
    inv.recorded_at = utcnow()
    activity.status = "held"
    await audit.record(
        session,
        actor_id=actor.user_id,
        actor_name=actor.username,
        action="activity.attendance",
        entity="activity_invitation",
        entity_id=inv.id,
        changes={
            "activity_id": activity.id,
            "unit_id": inv.unit_id,
            "before": before,
            "attended": inv.attended,
            "attendee_count": inv.attendee_count,
        },
        ip=actor.ip,
    )
    await session.commit()
    return _invitation_out(inv, unit_name)


async def add_issue(
    session: AsyncSession, actor: Principal, activity_id: int, body: schemas.IssueIn
) -> schemas.IssueOut:
    """Record an issue raised at the activity, by an invited unit (or with no unit).

    It is kept on the activity; turning it into an enterprise request waits for the requests domain.
    """
    activity = await _load(session, actor, activity_id)
    unit_id = body.unit_id
    if actor.role is Role.UNIT_SECURITY:
        own = next(iter(actor.scope.unit_ids), None)
        if unit_id is None:
            unit_id = own
        if unit_id != own:
            raise Forbidden("只能以本单位名义反映问题", code="forbidden")
    elif actor.role not in ATTENDANCE_ROLES:
        raise Forbidden("您的角色无权登记问题", code="forbidden")
    unit_name: str | None = None
    if unit_id is not None:
        invited = (
            await session.execute(
                select(Unit.name)
                .join(ActivityInvitation, ActivityInvitation.unit_id == Unit.id)
                .where(
                    ActivityInvitation.activity_id == activity.id,
                    Unit.id == unit_id,
                    _invitation_clause(actor, activity),
                )
            )
        ).scalar_one_or_none()
        if invited is None:
            raise field_error("unit_id", "该单位未受邀参加此活动", "not_invited")
        unit_name = invited
    issue = ActivityIssue(
        activity_id=activity.id, unit_id=unit_id, text=body.text, raised_by_id=actor.user_id or None
    )
    session.add(issue)
    await session.flush()
    await audit.record(
        session,
        actor_id=actor.user_id,
        actor_name=actor.username,
        action="activity.issue",
        entity="activity_issue",
        entity_id=issue.id,
        changes={"activity_id": activity.id, "unit_id": unit_id},
        ip=actor.ip,
    )
    await session.commit()
    return schemas.IssueOut(
        id=issue.id,
        activity_id=issue.activity_id,
        unit_id=unit_id,
        unit_name=unit_name,
        text=issue.text,
        raised_by_id=issue.raised_by_id,
        created_at=issue.created_at,
    )


# --- participation -----------------------------------------------------------------------------


def local_bounds(start: dt.date, end: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """[start 00:00, end+1 00:00) in Asia/Shanghai, as UTC."""
    lo = dt.datetime.combine(start, dt.time(), LOCAL_TZ).astimezone(dt.UTC)
    hi = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), LOCAL_TZ).astimezone(dt.UTC)
    return lo, hi


async def participation(
    session: AsyncSession,
    actor: Principal,
    *,
    start: dt.date,
    end: dt.date,
    unit_id: int | None = None,
    station_id: int | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[schemas.ParticipationRow], int]:
    """Per unit: invitations to activities held in [start, end] (local dates), how many it attended,
    and the rate attended ÷ invited. Cancelled and not-yet-held activities do not count. One query."""
    if end < start:
        raise field_error("to", "结束日期不能早于开始日期")
    lo, hi = local_bounds(start, end)
    attended = func.sum(case((ActivityInvitation.attended.is_(True), 1), else_=0)).cast(Integer)
    invited = func.count(ActivityInvitation.id)
    conds: list[ColumnElement[bool]] = [
        unit_clause(actor.scope),
        Activity.status == "held",
        Activity.starts_at >= lo,
        Activity.starts_at < hi,
    ]
    if actor.scope.kind in (ScopeKind.TEAM, ScopeKind.ZONE, ScopeKind.NONE):
        conds.append(false())
    if unit_id is not None:
        conds.append(Unit.id == unit_id)
    if station_id is not None:
        conds.append(Unit.station_id == station_id)
    base = (
        select(Unit.id, Unit.name, Unit.station_id, invited.label("invited"), attended.label("attended"))
        .join(ActivityInvitation, ActivityInvitation.unit_id == Unit.id)
        .join(Activity, and_(Activity.id == ActivityInvitation.activity_id))
        .where(*conds)
        .group_by(Unit.id, Unit.name, Unit.station_id)
    )
    total = (await session.execute(select(func.count()).select_from(base.subquery()))).scalar_one()
    rows = await session.execute(base.order_by(Unit.id).limit(limit).offset(offset))
    items = [
        schemas.ParticipationRow(
            unit_id=uid,
            unit_name=name,
            station_id=sid,
            invited=inv,
            attended=att or 0,
            rate=round((att or 0) / inv, 4) if inv else None,
        )
        for uid, name, sid, inv, att in rows.all()
    ]
    return items, total


async def load_for_page(session: AsyncSession, actor: Principal, activity_id: int) -> Activity:
    """The activity row itself (scoped), for pages that need to know what the viewer may do."""
    return await _load(session, actor, activity_id)
