"""HTML pages of incidents: the officer's triage queue (accept or change in one step), the unit's
queue of handed-over matters, an incident's page with its timeline, and the intake form.

They call the same service functions as the JSON API; forms post with the page's CSRF token.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from eqian.core.accounts import Role
from eqian.core.errors import AppError, ValidationFailed
from eqian.core.permissions import REVEAL_ROLES, Principal
from eqian.core.schemas import IdPath
from eqian.incidents import classifier, intake, routing, schemas, service
from eqian.organizations import service as org_service
from eqian.web.deps import get_db, get_principal
from eqian.web.pages import render
from eqian.web.routing import Router

router = Router(include_in_schema=False)
PAGE_SIZE = 50
OFFICER_TABS = ("queue", "open", "overdue", "resolved", "closed")
UNIT_TABS = ("assigned", "in_progress", "resolved", "closed")


def _opt_int(value: str | None) -> int | None:
    return int(value) if value and value.isascii() and value.isdigit() and len(value) <= 9 else None


def _message(exc: Exception) -> str:
    if isinstance(exc, RequestValidationError | ValidationError):
        errors = list(exc.errors())
        return str(errors[0].get("msg", "输入有误")) if errors else "输入有误"
    if isinstance(exc, AppError):
        return str(exc.details[0]["message"]) if exc.details else exc.message
    return "输入有误"


def _is_unit_side(actor: Principal) -> bool:
    return actor.role in (Role.UNIT_SECURITY, Role.SERVICE_POINT_STAFF)


@router.get("/incidents", response_class=HTMLResponse)
async def queue(
    request: Request,
    tab: Annotated[str | None, Query(max_length=16)] = None,
    station_id: Annotated[str | None, Query(max_length=12)] = None,
    unit_id: Annotated[str | None, Query(max_length=12)] = None,
    month: Annotated[str | None, Query(max_length=7)] = None,
    category: Annotated[str | None, Query(max_length=32)] = None,
    db: AsyncSession = Depends(get_db),
    actor: Principal = Depends(get_principal),
) -> Response:
    """Officers: the triage queue and the other tabs; a unit: the matters handed to it."""
    unit_side = _is_unit_side(actor)
    tabs = UNIT_TABS if unit_side else OFFICER_TABS
    tab = tab if tab in tabs else tabs[0]
    month_value = month if month and len(month) == 7 and month[4] == "-" else None
    try:
        service.check_month(month_value)
    except ValidationFailed:
        month_value = None
    base = service.IncidentFilters(
        station_id=_opt_int(station_id),
        unit_id=_opt_int(unit_id),
        month=month_value,
        category=category if category in classifier.CATEGORIES else None,
        limit=PAGE_SIZE,
    )
    counts: dict[str, int] = {}
    for name in tabs:
        _, counts[name] = await service.list_incidents(
            db, actor, service.IncidentFilters(**{**base.__dict__, "status": name, "limit": 1})
        )
    shown = service.IncidentFilters(**{**base.__dict__, "status": tab})
    items, _ = await service.list_incidents(db, actor, shown)
    return render(
        request,
        "incidents/queue.html",
        {
            "nav": "incidents",
            "tab": tab,
            "tabs": tabs,
            "counts": counts,
            "incidents": items,
            "filters": base,
            "unit_side": unit_side,
            "can_triage": actor.role in service.TRIAGE_ROLES,
            "can_file": actor.role in service.INTAKE_ROLES,
            "stations": [] if unit_side else await org_service.list_stations(db, actor),
            "categories": classifier.CATEGORIES,
            "routes": routing.ROUTE_LABELS,
        },
    )


@router.get("/incidents/new", response_class=HTMLResponse)
async def intake_form(
    request: Request, db: AsyncSession = Depends(get_db), actor: Principal = Depends(get_principal)
) -> Response:
    return render(request, "incidents/new.html", await _intake_context(db, actor, {}, None))


async def _intake_context(
    db: AsyncSession, actor: Principal, values: dict[str, str], error: str | None
) -> dict[str, object]:
    return {
        "nav": "incidents",
        "values": values,
        "error": error,
        "stations": await org_service.list_stations(db, actor),
        "categories": classifier.CATEGORIES,
    }


@router.post("/incidents/new", response_class=HTMLResponse)
async def intake_submit(
    request: Request, db: AsyncSession = Depends(get_db), actor: Principal = Depends(get_principal)
) -> Response:
    form = await request.form()
    values = {k: v.strip() for k, v in form.multi_items() if isinstance(v, str) and k != "csrf_token"}
    raw: dict[str, object] = {k: v for k, v in values.items() if v and k in schemas.IncidentIn.model_fields}
    if "station_id" in raw:
        raw["station_id"] = _opt_int(str(raw["station_id"])) or 0
    try:
        body = schemas.IncidentIn.model_validate(raw)
        out, _ = await intake.create_incident(db, actor, body, batcher=request.app.state.intake_batcher)
    except (ValidationFailed, ValidationError) as exc:
        context = await _intake_context(db, actor, values, _message(exc))
        return render(request, "incidents/new.html", context, status_code=422)
    return RedirectResponse(f"/incidents/{out['id']}", status_code=303)


def _detail_context(
    actor: Principal, incident: schemas.IncidentDetail, error: str | None, revealed: str | None = None
) -> dict[str, object]:
    officer = actor.role in service.OFFICER_ROLES
    unit_may = actor.role is Role.UNIT_SECURITY and incident.route == "self_governance"
    actions = [
        action
        for action, (sources, _, _) in service.TRANSITIONS.items()
        if incident.status in sources and (officer or (unit_may and action in service.UNIT_ACTIONS))
    ]
    return {
        "nav": "incidents",
        "incident": incident,
        "error": error,
        "actions": actions,
        "can_triage": actor.role in service.TRIAGE_ROLES and incident.status == "reported",
        "can_relink": officer and incident.status not in service.DONE_STATUSES,
        "can_reveal": actor.role in REVEAL_ROLES and bool(incident.caller_phone),
        "revealed": revealed,
        "categories": classifier.CATEGORIES,
        "routes": routing.ROUTE_LABELS,
    }


@router.get("/incidents/{incident_id}", response_class=HTMLResponse)
async def incident_page(
    request: Request,
    incident_id: IdPath,
    db: AsyncSession = Depends(get_db),
    actor: Principal = Depends(get_principal),
) -> Response:
    incident = await service.get_incident(db, actor, incident_id)
    return render(request, "incidents/detail.html", _detail_context(actor, incident, None))


async def _form(request: Request) -> dict[str, str]:
    form = await request.form()
    return {k: v.strip() for k, v in form.multi_items() if isinstance(v, str) and k != "csrf_token"}


async def _redisplay(
    request: Request, db: AsyncSession, actor: Principal, incident_id: int, exc: Exception
) -> Response:
    incident = await service.get_incident(db, actor, incident_id)
    return render(
        request, "incidents/detail.html", _detail_context(actor, incident, _message(exc)), status_code=422
    )


@router.post("/incidents/{incident_id}/triage", response_class=HTMLResponse)
async def triage_submit(
    request: Request,
    incident_id: IdPath,
    db: AsyncSession = Depends(get_db),
    actor: Principal = Depends(get_principal),
) -> Response:
    """One step: the form comes prefilled with the suggestion; the officer accepts or changes it."""
    values = await _form(request)
    back = values.pop("back", "")
    raw: dict[str, object] = {k: v for k, v in values.items() if v}
    if "police" in raw:
        raw["police"] = raw["police"] == "yes"
    if "unit_id" in raw:
        raw["unit_id"] = _opt_int(str(raw["unit_id"])) or 0
    try:
        body = schemas.TriageIn.model_validate(raw)
        await service.triage(db, actor, incident_id, body)
    except (ValidationFailed, ValidationError) as exc:
        return await _redisplay(request, db, actor, incident_id, exc)
    target = "/incidents?tab=queue" if back == "queue" else f"/incidents/{incident_id}"
    return RedirectResponse(target, status_code=303)


@router.post("/incidents/{incident_id}/transition", response_class=HTMLResponse)
async def transition_submit(
    request: Request,
    incident_id: IdPath,
    db: AsyncSession = Depends(get_db),
    actor: Principal = Depends(get_principal),
) -> Response:
    values = await _form(request)
    raw: dict[str, object] = {k: v for k, v in values.items() if v}
    try:
        body = schemas.TransitionIn.model_validate(raw)
        await service.transition(db, actor, incident_id, body)
    except (ValidationFailed, ValidationError) as exc:
        return await _redisplay(request, db, actor, incident_id, exc)
    return RedirectResponse(f"/incidents/{incident_id}", status_code=303)


@router.post("/incidents/{incident_id}/link", response_class=HTMLResponse)
async def link_submit(
    request: Request,
    incident_id: IdPath,
    db: AsyncSession = Depends(get_db),
    actor: Principal = Depends(get_principal),
) -> Response:
    values = await _form(request)
    raw: dict[str, object] = {"reason": values.get("reason", ""), "unit_id": _opt_int(values.get("unit_id"))}
    try:
        body = schemas.LinkIn.model_validate(raw)
        await service.relink(db, actor, incident_id, body)
    except (ValidationFailed, ValidationError) as exc:
        return await _redisplay(request, db, actor, incident_id, exc)
    return RedirectResponse(f"/incidents/{incident_id}", status_code=303)


@router.post("/incidents/{incident_id}/reveal-phone", response_class=HTMLResponse)
async def reveal_submit(
    request: Request,
    incident_id: IdPath,
    db: AsyncSession = Depends(get_db),
    actor: Principal = Depends(get_principal),
) -> Response:
    revealed = await service.reveal_phone(db, actor, incident_id)
    incident = await service.get_incident(db, actor, incident_id)
    return render(
        request, "incidents/detail.html", _detail_context(actor, incident, None, revealed.caller_phone)
    )
