"""JSON API of police–enterprise activities under /api/v1/activities: parse, authorise, call the service."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import Depends, Query
from sqlalchemy.ext.asyncio import AsyncSession

from eqian.activities import schemas, service
from eqian.core.errors import field_error
from eqian.core.permissions import Principal
from eqian.core.schemas import IdPath, IdQuery, Limit, Offset, Page
from eqian.web.deps import get_db, get_principal
from eqian.web.routing import Router

router = Router(prefix="/api/v1/activities", tags=["activities"])

Db = Annotated[AsyncSession, Depends(get_db)]
Actor = Annotated[Principal, Depends(get_principal)]
DateQuery = Annotated[dt.date | None, Query()]
FromQuery = Annotated[dt.date | None, Query(alias="from")]


def _years(*dates: dt.date | None) -> None:
    for d in dates:
        try:
            schemas.check_year(d)
        except ValueError as exc:
            raise field_error("from/to", str(exc)) from exc


@router.get("", response_model=Page[schemas.ActivityOut])
async def list_activities(
    db: Db,
    actor: Actor,
    station_id: IdQuery = None,
    unit_id: IdQuery = None,
    kind: schemas.Kind | None = None,
    status: schemas.Status | None = None,
    from_: FromQuery = None,
    to: DateQuery = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Page[schemas.ActivityOut]:
    """Activities in the caller's jurisdiction, by start time; ``from``/``to`` are local dates, inclusive."""
    _years(from_, to)
    lo = service.local_bounds(from_, from_)[0] if from_ else None
    hi = service.local_bounds(to, to)[1] if to else None
    f = service.ActivityFilters(
        station_id=station_id,
        unit_id=unit_id,
        kind=kind,
        status=status,
        starts_from=lo,
        starts_before=hi,
        limit=limit,
        offset=offset,
    )
    items, total = await service.list_activities(db, actor, f)
    return Page(items=items, total=total)


@router.post("", response_model=schemas.ActivityOut, status_code=201)
async def create_activity(body: schemas.ActivityIn, db: Db, actor: Actor) -> schemas.ActivityOut:
    """Plan an activity (bureau admin anywhere; station officer for its own station)."""
    return await service.create_activity(db, actor, body)


@router.post("/roundtables/schedule", response_model=schemas.ScheduleOut)
async def schedule_roundtables(body: schemas.ScheduleIn, db: Db, actor: Actor) -> schemas.ScheduleOut:
    """Plan the next N weekly roundtables of a station, rotating through its industries; idempotent."""
    return await service.schedule_roundtables(db, actor, body)


@router.get("/participation", response_model=Page[schemas.ParticipationRow])
async def participation(
    db: Db,
    actor: Actor,
    unit_id: IdQuery = None,
    station_id: IdQuery = None,
    from_: FromQuery = None,
    to: DateQuery = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Page[schemas.ParticipationRow]:
    """Per unit: attended ÷ invited over held activities in [``from``, ``to``] (default: last year)."""
    _years(from_, to)
    end = to or service.local_today()
    start = from_ or end - dt.timedelta(days=365)
    items, total = await service.participation(
        db, actor, start=start, end=end, unit_id=unit_id, station_id=station_id, limit=limit, offset=offset
    )
    return Page(items=items, total=total)


@router.get("/{activity_id}", response_model=schemas.ActivityDetail)
async def get_activity(activity_id: IdPath, db: Db, actor: Actor) -> schemas.ActivityDetail:
    return await service.get_activity(db, actor, activity_id)


@router.patch("/{activity_id}", response_model=schemas.ActivityOut)
async def update_activity(
    activity_id: IdPath, body: schemas.ActivityUpdate, db: Db, actor: Actor
) -> schemas.ActivityOut:
    """Edit, cancel (``status: cancelled``) or write the minutes."""
    return await service.update_activity(db, actor, activity_id, body)


@router.post("/{activity_id}/invitations", response_model=list[schemas.InvitationOut])
async def invite_units(
    activity_id: IdPath, body: schemas.InviteIn, db: Db, actor: Actor
) -> list[schemas.InvitationOut]:
    return await service.invite_units(db, actor, activity_id, body)


@router.post("/{activity_id}/invitations/{invitation_id}/response", response_model=schemas.InvitationOut)
async def respond(
    activity_id: IdPath, invitation_id: IdPath, body: schemas.RespondIn, db: Db, actor: Actor
) -> schemas.InvitationOut:
    """The invited unit's security head accepts or declines."""
    return await service.respond(db, actor, activity_id, invitation_id, body)


@router.post("/{activity_id}/invitations/{invitation_id}/attendance", response_model=schemas.InvitationOut)
async def record_attendance(
    activity_id: IdPath, invitation_id: IdPath, body: schemas.AttendanceIn, db: Db, actor: Actor
) -> schemas.InvitationOut:
    return await service.record_attendance(db, actor, activity_id, invitation_id, body)


@router.get("/{activity_id}/issues", response_model=list[schemas.IssueOut])
async def list_issues(activity_id: IdPath, db: Db, actor: Actor) -> list[schemas.IssueOut]:
    return await service.list_issues(db, actor, activity_id)


@router.post("/{activity_id}/issues", response_model=schemas.IssueOut, status_code=201)
async def add_issue(activity_id: IdPath, body: schemas.IssueIn, db: Db, actor: Actor) -> schemas.IssueOut:
    """Record an issue raised at the activity (it becomes an enterprise request once that domain exists)."""
    return await service.add_issue(db, actor, activity_id, body)
