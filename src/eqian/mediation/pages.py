"""Pages of mediation: the case list with team statistics, a case's page (parties, sessions,
outcome form), and the form to open a case. They call the same service functions as the API;
forms post with the page's CSRF token."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation
from typing import Annotated, TypeVar

from fastapi import Depends, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData

from eqian.core.accounts import Role
from eqian.core.errors import Conflict, Forbidden, ValidationFailed
from eqian.core.permissions import Principal
from eqian.core.schemas import IdPath, InputModel
from eqian.mediation import schemas, service
from eqian.organizations import service as org_service
from eqian.web.deps import get_db, get_principal
from eqian.web.pages import render
from eqian.web.routing import Router

router = Router(include_in_schema=False)
M = TypeVar("M", bound=InputModel)
PAGE_SIZE = 50
TABS = ("active", "closed")
Db = Annotated[AsyncSession, Depends(get_db)]
Actor = Annotated[Principal, Depends(get_principal)]


def message_of(exc: Exception) -> str:
    if isinstance(exc, RequestValidationError | ValidationError):
        errors = list(exc.errors())
        return str(errors[0].get("msg", "输入有误")).removeprefix("Value error, ") if errors else "输入有误"
    if isinstance(exc, ValidationFailed) and exc.details:
        return str(exc.details[0]["message"])
    return getattr(exc, "message", "输入有误")


def form_values(form: FormData) -> dict[str, str]:
    return {k: v for k, v in form.multi_items() if isinstance(v, str)}


def parse(model: type[M], data: dict[str, object]) -> M:
    return model.model_validate(data)


def _opt_int(value: str | None) -> int | None:
    return int(value) if value and value.isascii() and value.isdigit() and len(value) <= 9 else None


def _opt_date(value: str | None) -> dt.date | None:
    try:
        day = dt.date.fromisoformat(value) if value else None
    except ValueError:
        return None
    return day if day is None or service.MIN_YEAR <= day.year <= service.MAX_YEAR else None


def _money(value: str) -> Decimal | str | None:
    value = value.strip().replace(",", "")
    if not value:
        return None
    try:
        return Decimal(value)
    except InvalidOperation:
        return value  # let validation name the field


@router.get("/mediation", response_class=HTMLResponse)
async def case_list(
    request: Request,
    db: Db,
    actor: Actor,
    tab: Annotated[str, Query(max_length=16)] = "active",
    team_id: Annotated[str | None, Query(max_length=12)] = None,
    since: Annotated[str | None, Query(alias="from", max_length=10)] = None,
    until: Annotated[str | None, Query(alias="to", max_length=10)] = None,
) -> Response:
    tab = tab if tab in TABS else "active"
    team = _opt_int(team_id)
    lo, hi = _opt_date(since), _opt_date(until)
    if lo and hi and lo > hi:
        lo, hi = hi, lo
    counts = {}
    for name in TABS:
        _, counts[name] = await service.list_cases(db, actor, status=name, team_id=team, limit=1)
    cases, _ = await service.list_cases(db, actor, status=tab, team_id=team, limit=PAGE_SIZE)
    rows, summary = await service.stats(db, actor, "team", since=lo, until=hi)
    return render(
        request,
        "mediation/cases.html",
        {
            "nav": "mediation",
            "tab": tab,
            "tabs": TABS,
            "counts": counts,
            "cases": cases,
            "team_id": team,
            "since": lo,
            "until": hi,
            "stats": rows,
            "summary": summary,
            "teams": await service.list_teams(db, actor),
            "can_open": actor.role in service.OPEN_ROLES,
            "labels": _labels(),
        },
    )


def _labels() -> dict[str, dict[str, str]]:
    return {
        "dispute": schemas.DISPUTE_TYPES,
        "status": schemas.STATUSES,
        "outcome": schemas.OUTCOMES,
        "referral": schemas.REFERRALS,
        "party": schemas.PARTY_ROLES,
    }


async def _new_context(
    db: AsyncSession, actor: Principal, values: dict[str, str], error: str | None
) -> dict[str, object]:
    return {
        "nav": "mediation",
        "values": values,
        "error": error,
        "labels": _labels(),
        "stations": await org_service.list_stations(db, actor),
        "needs_station": actor.role is Role.BUREAU_ADMIN,
        # A liaison officer's cases are seen through units: they pick one of theirs.
        "units": (
            (await org_service.list_units(db, actor, org_service.UnitFilters(limit=500)))[0]
            if actor.role is Role.LIAISON_OFFICER
            else []
        ),
    }


@router.get("/mediation/new", response_class=HTMLResponse)
async def new_case(request: Request, db: Db, actor: Actor) -> Response:
    if actor.role not in service.OPEN_ROLES:
        raise Forbidden("当前角色无权执行此操作")
    return render(request, "mediation/new.html", await _new_context(db, actor, {}, None))


@router.post("/mediation/new", response_class=HTMLResponse)
async def new_case_submit(request: Request, db: Db, actor: Actor) -> Response:
    values = form_values(await request.form())
    source = {Role.UNIT_SECURITY: "unit", Role.SERVICE_POINT_STAFF: "service_point"}.get(
        actor.role, "walk_in"
    )
    parties: list[dict[str, object]] = []
    for role in ("applicant", "respondent"):
        name = values.get(f"{role}_name", "").strip()
        if name:
            parties.append(
                {
                    "name": name,
                    "role": role,
                    "phone": values.get(f"{role}_phone") or None,
                    "id_number": values.get(f"{role}_id_number") or None,
                }
            )
    try:
        body = parse(
            schemas.CaseIn,
            {
                "source": source,
                "station_id": _opt_int(values.get("station_id")),
                "unit_id": _opt_int(values.get("unit_id")),
                "dispute_type": values.get("dispute_type", ""),
                "summary": values.get("summary", ""),
                "amount_in_dispute": _money(values.get("amount_in_dispute", "")),
                "parties": parties,
            },
        )
        case = await service.create_case(db, actor, body)
    except (ValidationFailed, ValidationError) as exc:
        context = await _new_context(db, actor, values, message_of(exc))
        return render(request, "mediation/new.html", context, status_code=422)
    return RedirectResponse(f"/mediation/cases/{case.id}", status_code=303)


async def _case_context(
    db: AsyncSession,
    actor: Principal,
    case_id: int,
    error: str | None = None,
    revealed: schemas.RevealedParty | None = None,
) -> dict[str, object]:
    case = await service.get_case(db, actor, case_id)
    row = await service._load_case(db, actor, case_id)
    can_handle = case.status != "closed" and await service.can_handle(db, actor, row)
    return {
        "nav": "mediation",
        "case": case,
        "error": error,
        "labels": _labels(),
        "can_handle": can_handle,
        "can_assign": case.status != "closed" and actor.role in service.ASSIGN_ROLES,
        "can_reveal": actor.role in service.PARTY_REVEAL_ROLES,
        "revealed": revealed,
        "teams": await service.list_teams(db, actor) if actor.role in service.ASSIGN_ROLES else [],
    }


@router.get("/mediation/cases/{case_id}", response_class=HTMLResponse)
async def case_page(request: Request, case_id: IdPath, db: Db, actor: Actor) -> Response:
    return render(request, "mediation/case.html", await _case_context(db, actor, case_id))


@router.post("/mediation/cases/{case_id}/sessions", response_class=HTMLResponse)
async def session_submit(request: Request, case_id: IdPath, db: Db, actor: Actor) -> Response:
    values = form_values(await request.form())
    try:
        body = parse(schemas.SessionIn, {"note": values.get("note", ""), "place": values.get("place", "")})
        await service.add_session(db, actor, case_id, body)
    except (ValidationFailed, ValidationError, Conflict) as exc:
        await db.rollback()
        context = await _case_context(db, actor, case_id, message_of(exc))
        return render(request, "mediation/case.html", context, status_code=422)
    return RedirectResponse(f"/mediation/cases/{case_id}", status_code=303)


@router.post("/mediation/cases/{case_id}/outcome", response_class=HTMLResponse)
async def outcome_submit(request: Request, case_id: IdPath, db: Db, actor: Actor) -> Response:
    values = form_values(await request.form())
    outcome = values.get("outcome", "")
    data: dict[str, object] = {
        "outcome": outcome,
        "note": values.get("note", ""),
        "amount_recovered": _money(values.get("amount_recovered", "")) or Decimal("0"),
    }
    if outcome == "agreement":
        data |= {
            "agreement_text": values.get("agreement_text", ""),
            "agreement_amount": _money(values.get("agreement_amount", "")),
            "payment_schedule": values.get("payment_schedule", ""),
        }
    if outcome == "referred":
        data["referred_to"] = values.get("referred_to") or None
    try:
        await service.record_outcome(db, actor, case_id, parse(schemas.OutcomeIn, data))
    except (ValidationFailed, ValidationError, Conflict) as exc:
        await db.rollback()
        context = await _case_context(db, actor, case_id, message_of(exc))
        return render(request, "mediation/case.html", context, status_code=422)
    return RedirectResponse(f"/mediation/cases/{case_id}", status_code=303)


@router.post("/mediation/cases/{case_id}/assign", response_class=HTMLResponse)
async def assign_submit(request: Request, case_id: IdPath, db: Db, actor: Actor) -> Response:
    values = form_values(await request.form())
    try:
        body = parse(schemas.AssignIn, {"team_id": _opt_int(values.get("team_id")) or 0})
        await service.assign_case(db, actor, case_id, body)
    except (ValidationFailed, ValidationError, Conflict) as exc:
        await db.rollback()
        context = await _case_context(db, actor, case_id, message_of(exc))
        return render(request, "mediation/case.html", context, status_code=422)
    return RedirectResponse(f"/mediation/cases/{case_id}", status_code=303)


@router.post("/mediation/cases/{case_id}/parties/{party_id}/reveal", response_class=HTMLResponse)
async def reveal_submit(
    request: Request, case_id: IdPath, party_id: IdPath, db: Db, actor: Actor
) -> Response:
    """Shows one party's full ID number and phone on the case page; the reveal is audited."""
    revealed = await service.reveal_party(db, actor, case_id, party_id)
    context = await _case_context(db, actor, case_id, revealed=revealed)
    response = render(request, "mediation/case.html", context)
    response.headers["Cache-Control"] = "no-store"
    return response
