"""JSON API of mediation under /api/v1/mediation: cases, teams and statistics."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import Depends, Query
from sqlalchemy.ext.asyncio import AsyncSession

from eqian.core.permissions import Principal
from eqian.core.schemas import IdPath, IdQuery, Limit, Offset, OutputModel, Page
from eqian.mediation import schemas, service
from eqian.web.deps import get_db, get_principal
from eqian.web.routing import Router

router = Router(prefix="/api/v1/mediation", tags=["mediation"])

Db = Annotated[AsyncSession, Depends(get_db)]
Actor = Annotated[Principal, Depends(get_principal)]
Month = Annotated[str | None, Query(pattern=r"^\d{4}-\d{2}$", description="YYYY-MM (opened in that month)")]


class StatsPage(OutputModel):
    items: list[schemas.StatsRow]
    total: int
    summary: schemas.StatsRow


@router.get("/teams", response_model=Page[schemas.TeamOut])
async def list_teams(db: Db, actor: Actor) -> Page[schemas.TeamOut]:
    """Mediation teams with members, specialties and current open cases."""
    items = await service.list_teams(db, actor)
    return Page(items=items, total=len(items))


@router.post("/teams", response_model=schemas.TeamOut, status_code=201)
async def create_team(body: schemas.TeamIn, db: Db, actor: Actor) -> schemas.TeamOut:
    """Register a team (bureau admin; a station officer for their station)."""
    return await service.create_team(db, actor, body)


@router.post("/teams/{team_id}/members", response_model=schemas.MemberOut, status_code=201)
async def add_member(team_id: IdPath, body: schemas.MemberIn, db: Db, actor: Actor) -> schemas.MemberOut:
    """Add a member with specialties (dispute types) to a team."""
    return await service.add_member(db, actor, team_id, body)


@router.get("/cases", response_model=Page[schemas.CaseOut])
async def list_cases(
    db: Db,
    actor: Actor,
    status: Annotated[str | None, Query(pattern=r"^(open|in_progress|closed|active)$")] = None,
    outcome: schemas.Outcome | None = None,
    team_id: IdQuery = None,
    station_id: IdQuery = None,
    unit_id: IdQuery = None,
    incident_id: IdQuery = None,
    dispute_type: schemas.DisputeType | None = None,
    month: Month = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Page[schemas.CaseOut]:
    """Cases in the caller's scope, newest first (``status=active``: open or in progress)."""
    items, total = await service.list_cases(
        db,
        actor,
        status=status,
        outcome=outcome,
        team_id=team_id,
        station_id=station_id,
        unit_id=unit_id,
        incident_id=incident_id,
        dispute_type=dispute_type,
        month=month,
        limit=limit,
        offset=offset,
    )
    return Page(items=items, total=total)


@router.post("/cases", response_model=schemas.CaseDetail, status_code=201)
async def create_case(body: schemas.CaseIn, db: Db, actor: Actor) -> schemas.CaseDetail:
    """Open a case at a service point, for a unit, or walked in to a team; the team is chosen by
    specialty and load unless given."""
    return await service.create_case(db, actor, body)


@router.get("/cases/{case_id}", response_model=schemas.CaseDetail)
async def get_case(case_id: IdPath, db: Db, actor: Actor) -> schemas.CaseDetail:
    """One case with parties (masked) and sessions."""
    return await service.get_case(db, actor, case_id)


@router.post("/cases/{case_id}/sessions", response_model=schemas.CaseDetail, status_code=201)
async def add_session(case_id: IdPath, body: schemas.SessionIn, db: Db, actor: Actor) -> schemas.CaseDetail:
    """Record a mediation session with notes (the case moves to in progress)."""
    return await service.add_session(db, actor, case_id, body)


@router.post("/cases/{case_id}/outcome", response_model=schemas.CaseDetail)
async def record_outcome(
    case_id: IdPath, body: schemas.OutcomeIn, db: Db, actor: Actor
) -> schemas.CaseDetail:
    """Close the case: agreement (text, amount, payment schedule), failed, or referred."""
    return await service.record_outcome(db, actor, case_id, body)


@router.post("/cases/{case_id}/assign", response_model=schemas.CaseDetail)
async def assign_case(case_id: IdPath, body: schemas.AssignIn, db: Db, actor: Actor) -> schemas.CaseDetail:
    """Hand the case to another team (bureau admin, station officer)."""
    return await service.assign_case(db, actor, case_id, body)


@router.post("/cases/{case_id}/parties/{party_id}/reveal", response_model=schemas.RevealedParty)
async def reveal_party(case_id: IdPath, party_id: IdPath, db: Db, actor: Actor) -> schemas.RevealedParty:
    """A party's unmasked ID number and phone (officers, mediators); written to the audit log."""
    return await service.reveal_party(db, actor, case_id, party_id)


@router.get("/stats", response_model=StatsPage)
async def stats(
    db: Db,
    actor: Actor,
    group: schemas.StatsGroup = "team",
    since: Annotated[dt.date | None, Query(alias="from")] = None,
    until: Annotated[dt.date | None, Query(alias="to")] = None,
    station_id: IdQuery = None,
    team_id: IdQuery = None,
) -> StatsPage:
    """Opened / mediated / successful / failed / referred, success rate and amount recovered, per
    team, station, month or dispute type; ``summary`` is the total (e.g. 1,320 mediated, 1,297
    successful, 98.3 %)."""
    rows, summary = await service.stats(
        db, actor, group, since=since, until=until, station_id=station_id, team_id=team_id
    )
    return StatsPage(items=rows, total=len(rows), summary=summary)
