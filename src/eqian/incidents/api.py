"""JSON API of incidents under /api/v1/incidents.

``POST /api/v1/incidents`` files an incident (classified, linked to a unit and routed by the policy);
send an ``Idempotency-Key`` header to make retries safe: the same key and body answer the first
response again (header ``Idempotent-Replayed: true``), the same key with another body is 409
``idempotency_key_reused``. ``POST /classify`` answers the classifier's verdict without storing.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Query, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from eqian.core import idempotency
from eqian.core.permissions import Principal
from eqian.core.schemas import IdPath, IdQuery, Limit, Offset, Page
from eqian.incidents import intake, schemas, service
from eqian.web.deps import get_db, get_principal
from eqian.web.lean import LeanRoute
from eqian.web.routing import Router

router = Router(prefix="/api/v1/incidents", tags=["incidents"])

Db = Annotated[AsyncSession, Depends(get_db)]
Actor = Annotated[Principal, Depends(get_principal)]
StatusFilter = Annotated[
    str | None,
    Query(
        pattern=r"^(reported|triaged|assigned|in_progress|resolved|closed|open|overdue|queue)$",
        description="a status, or open (not yet resolved), overdue (SLA breached), queue (awaiting triage)",
    ),
]
Month = Annotated[str | None, Query(pattern=r"^\d{4}-\d{2}$", description="YYYY-MM (Asia/Shanghai)")]


async def create_incident(
    request: Request,
    body: schemas.IncidentIn,
    db: Db,
    actor: Actor,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=128)] = None,
) -> Response:
    """File an incident (bureau admin, station officer): classified, linked to a unit, routed."""
    key = idempotency.check_key(idempotency_key) if idempotency_key is not None else None
    out, replayed = await intake.create_incident(
        db, actor, body, idempotency_key=key, batcher=request.app.state.intake_batcher
    )
    headers = {"Idempotent-Replayed": "true"} if replayed else {}
    return JSONResponse(out, status_code=201, headers=headers)


# The intake path integrations drive hardest: parameters resolved by web.lean, not FastAPI's solver.
router.add_api_route(
    "",
    create_incident,
    methods=["POST"],
    status_code=201,
    response_model=schemas.IncidentOut,
    responses={409: {"description": "duplicate 110 number, or Idempotency-Key reused with another body"}},
    route_class_override=LeanRoute,
)


@router.post("/classify", response_model=schemas.ClassifyOut)
async def classify(body: schemas.ClassifyIn, actor: Actor) -> schemas.ClassifyOut:
    """Category, police / non-police, confidence and the deciding words of a description; stores nothing."""
    return service.classify_text(body.text)


@router.get("", response_model=Page[schemas.IncidentOut])
async def list_incidents(
    db: Db,
    actor: Actor,
    status: StatusFilter = None,
    route: Annotated[str | None, Query(pattern=r"^(dispatch|self_governance|mediation)$")] = None,
    category: Annotated[str | None, Query(max_length=32)] = None,
    police: bool | None = None,
    station_id: IdQuery = None,
    unit_id: IdQuery = None,
    month: Month = None,
    assignee_id: IdQuery = None,
    q: Annotated[str | None, Query(max_length=100)] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Page[schemas.IncidentOut]:
    """Incidents in the caller's jurisdiction (newest first; the triage queue oldest first)."""
    service.check_month(month)
    filters = service.IncidentFilters(
        status=status,
        route=route,
        category=category,
        police=police,
        station_id=station_id,
        unit_id=unit_id,
        month=month,
        assignee_id=assignee_id,
        q=q or None,
        limit=limit,
        offset=offset,
    )
    items, total = await service.list_incidents(db, actor, filters)
    return Page(items=items, total=total)


@router.get("/routing-rules", response_model=Page[schemas.RoutingRuleOut])
async def list_rules(db: Db, actor: Actor) -> Page[schemas.RoutingRuleOut]:
    """The routing policy: category × police × unit category → route and SLA hours."""
    items = await service.list_rules(db, actor)
    return Page(items=items, total=len(items))


@router.post("/routing-rules", response_model=schemas.RoutingRuleOut, status_code=201)
async def add_rule(body: schemas.RoutingRuleIn, db: Db, actor: Actor) -> schemas.RoutingRuleOut:
    """Add a routing rule (bureau admin)."""
    return await service.add_rule(db, actor, body)


@router.patch("/routing-rules/{rule_id}", response_model=schemas.RoutingRuleOut)
async def update_rule(
    rule_id: IdPath, body: schemas.RoutingRulePatch, db: Db, actor: Actor
) -> schemas.RoutingRuleOut:
    """Change a rule's route or SLA (bureau admin)."""
    return await service.update_rule(db, actor, rule_id, body)


@router.delete("/routing-rules/{rule_id}", status_code=204)
async def delete_rule(rule_id: IdPath, db: Db, actor: Actor) -> Response:
    """Remove a rule (bureau admin); the catch-all stays."""
    await service.delete_rule(db, actor, rule_id)
    return Response(status_code=204)


@router.get("/{incident_id}", response_model=schemas.IncidentDetail)
async def get_incident(incident_id: IdPath, db: Db, actor: Actor) -> schemas.IncidentDetail:
    """One incident with its timeline; the caller's phone is masked."""
    return await service.get_incident(db, actor, incident_id)


@router.post("/{incident_id}/triage", response_model=schemas.IncidentDetail)
async def triage(incident_id: IdPath, body: schemas.TriageIn, db: Db, actor: Actor) -> schemas.IncidentDetail:
    """Accept or change the suggested category, police flag, unit and route; hands the incident over."""
    return await service.triage(db, actor, incident_id, body)


@router.post("/{incident_id}/transition", response_model=schemas.IncidentDetail)
async def transition(
    incident_id: IdPath, body: schemas.TransitionIn, db: Db, actor: Actor
) -> schemas.IncidentDetail:
    """start / resolve / close / reopen, each by the roles allowed to."""
    return await service.transition(db, actor, incident_id, body)


@router.post("/{incident_id}/link", response_model=schemas.IncidentDetail)
async def relink(incident_id: IdPath, body: schemas.LinkIn, db: Db, actor: Actor) -> schemas.IncidentDetail:
    """Correct the unit the incident is linked to (officers), with a reason."""
    return await service.relink(db, actor, incident_id, body)


@router.post("/{incident_id}/reveal-phone", response_model=schemas.RevealOut)
async def reveal_phone(incident_id: IdPath, db: Db, actor: Actor) -> schemas.RevealOut:
    """The caller's whole phone number (officers); audited."""
    return await service.reveal_phone(db, actor, incident_id)
