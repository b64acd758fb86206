"""JSON API of enterprise requests under /api/v1/requests (+ departments, stats)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import Depends, Query
from sqlalchemy.ext.asyncio import AsyncSession

from eqian.core.permissions import Principal
from eqian.core.schemas import IdPath, IdQuery, Limit, Offset, OutputModel, Page
from eqian.requests import schemas, service
from eqian.web.deps import get_db, get_principal
from eqian.web.routing import Router

router = Router(prefix="/api/v1/requests", tags=["requests"])

Db = Annotated[AsyncSession, Depends(get_db)]
Actor = Annotated[Principal, Depends(get_principal)]


class StatsPage(OutputModel):
    items: list[schemas.StatsRow]
    total: int
    summary: schemas.StatsRow


@router.get("/departments", response_model=Page[schemas.DepartmentOut])
async def list_departments(db: Db, actor: Actor) -> Page[schemas.DepartmentOut]:
    """The departments requests are routed to, with the kinds each takes."""
    items = await service.list_departments(db, actor)
    return Page(items=items, total=len(items))


@router.post("/departments", response_model=schemas.DepartmentOut, status_code=201)
async def create_department(body: schemas.DepartmentIn, db: Db, actor: Actor) -> schemas.DepartmentOut:
    """Add a department to the routing table (bureau admin)."""
    return await service.create_department(db, actor, body)


@router.get("/stats", response_model=StatsPage)
async def stats(
    db: Db,
    actor: Actor,
    group: schemas.StatsGroup = "kind",
    since: Annotated[dt.date | None, Query(alias="from")] = None,
    until: Annotated[dt.date | None, Query(alias="to")] = None,
) -> StatsPage:
    """收集 / 办结 / 平均办理天数 (collected / resolved / average days) and ratings, per kind,
    station, month or unit; ``summary`` is the total."""
    rows, summary = await service.stats(db, actor, group, since=since, until=until)
    return StatsPage(items=rows, total=len(rows), summary=summary)


@router.get("", response_model=Page[schemas.RequestOut])
async def list_requests(
    db: Db,
    actor: Actor,
    status: Annotated[str | None, Query(pattern=r"^(submitted|in_progress|resolved|open|overdue)$")] = None,
    kind: schemas.Kind | None = None,
    unit_id: IdQuery = None,
    station_id: IdQuery = None,
    assignee_id: IdQuery = None,
    month: Annotated[str | None, Query(pattern=r"^\d{4}-\d{2}$")] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Page[schemas.RequestOut]:
    """Requests of units in the caller's scope (``status=open``: not resolved; ``overdue``: open past due)."""
    items, total = await service.list_requests(
        db,
        actor,
        status=status,
        kind=kind,
        unit_id=unit_id,
        station_id=station_id,
        assignee_id=assignee_id,
        month=month,
        limit=limit,
        offset=offset,
    )
    return Page(items=items, total=total)


@router.post("", response_model=schemas.RequestDetail, status_code=201)
async def submit(body: schemas.RequestIn, db: Db, actor: Actor) -> schemas.RequestDetail:
    """A unit submits a request (an officer may submit for a unit in scope, naming ``unit_id``)."""
    return await service.submit(db, actor, body)


@router.get("/{request_id}", response_model=schemas.RequestDetail)
async def get_request(request_id: IdPath, db: Db, actor: Actor) -> schemas.RequestDetail:
    """One request with its timeline."""
    return await service.get_request(db, actor, request_id)


@router.post("/{request_id}/route", response_model=schemas.RequestDetail)
async def route(request_id: IdPath, body: schemas.RouteIn, db: Db, actor: Actor) -> schemas.RequestDetail:
    """Re-route to a department and/or an officer."""
    return await service.route(db, actor, request_id, body)


@router.post("/{request_id}/reply", response_model=schemas.RequestDetail)
async def reply(request_id: IdPath, body: schemas.ReplyIn, db: Db, actor: Actor) -> schemas.RequestDetail:
    """An officer's reply to the unit (the request moves to in progress)."""
    return await service.reply(db, actor, request_id, body)


@router.post("/{request_id}/resolve", response_model=schemas.RequestDetail)
async def resolve(request_id: IdPath, body: schemas.ResolveIn, db: Db, actor: Actor) -> schemas.RequestDetail:
    """Mark the request resolved, with what was done."""
    return await service.resolve(db, actor, request_id, body)


@router.post("/{request_id}/rate", response_model=schemas.RequestDetail)
async def rate(request_id: IdPath, body: schemas.RateIn, db: Db, actor: Actor) -> schemas.RequestDetail:
    """The unit rates the resolution 1–5, once."""
    return await service.rate(db, actor, request_id, body)
