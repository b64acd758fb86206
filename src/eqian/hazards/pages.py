"""HTML pages of hazards: the phone inspection form, the hazard board, a hazard's page.

They call the same service functions as the JSON API; forms post with the page's CSRF token.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from eqian.core.config import Settings
from eqian.core.errors import ValidationFailed
from eqian.core.permissions import Principal
from eqian.core.schemas import IdPath
from eqian.hazards import schemas, service
from eqian.hazards.api import parse_model, read_upload, uploads_dir
from eqian.organizations import service as org_service
from eqian.web.deps import get_db, get_principal, get_settings
from eqian.web.pages import render
from eqian.web.routing import Router

router = Router(include_in_schema=False)
PAGE_SIZE = 50
BOARD_TABS = ("open", "fix_submitted", "overdue", "verified")
OUTCOMES = ("pass", "fail", "na")


def _message(exc: ValidationFailed | RequestValidationError) -> str:
    if isinstance(exc, RequestValidationError):
        errors = list(exc.errors())
        return str(errors[0].get("msg", "输入有误")) if errors else "输入有误"
    return str(exc.details[0]["message"]) if exc.details else exc.message


def _opt_int(value: str | None) -> int | None:
    return int(value) if value and value.isascii() and value.isdigit() and len(value) <= 9 else None


@router.get("/hazards", response_class=HTMLResponse)
async def board(
    request: Request,
    tab: Annotated[str, Query(max_length=16)] = "open",
    station_id: Annotated[str | None, Query(max_length=12)] = None,
    category: Annotated[str | None, Query(max_length=32)] = None,
    db: AsyncSession = Depends(get_db),
    actor: Principal = Depends(get_principal),
) -> Response:
    tab = tab if tab in BOARD_TABS else "open"
    base = service.HazardFilters(station_id=_opt_int(station_id), category=category or None, limit=PAGE_SIZE)
    counts: dict[str, int] = {}
    for name in BOARD_TABS:
        _, counts[name] = await service.list_hazards(
            db, actor, service.HazardFilters(**{**base.__dict__, "status": name, "limit": 1})
        )
    items, _ = await service.list_hazards(
        db, actor, service.HazardFilters(**{**base.__dict__, "status": tab})
    )
    return render(
        request,
        "hazards/board.html",
        {
            "nav": "hazards",
            "tab": tab,
            "tabs": BOARD_TABS,
            "counts": counts,
            "hazards": items,
            "filters": base,
            "stations": await org_service.list_stations(db, actor),
            "categories": await org_service.list_categories(db),
        },
    )


@router.get("/hazards/inspect/{unit_id}", response_class=HTMLResponse)
async def inspect_form(
    request: Request,
    unit_id: IdPath,
    db: AsyncSession = Depends(get_db),
    actor: Principal = Depends(get_principal),
) -> Response:
    unit, items = await service.inspection_form(db, actor, unit_id)
    return render(
        request,
        "hazards/inspect.html",
        {"nav": "hazards", "unit": unit, "items": items, "values": {}, "error": None},
    )


@router.post("/hazards/inspect/{unit_id}", response_class=HTMLResponse)
async def inspect_submit(
    request: Request,
    unit_id: IdPath,
    db: AsyncSession = Depends(get_db),
    actor: Principal = Depends(get_principal),
    settings: Settings = Depends(get_settings),
) -> Response:
    unit, items = await service.inspection_form(db, actor, unit_id)
    form = await request.form()
    values = {k: v for k, v in form.multi_items() if isinstance(v, str)}
    results: list[dict[str, object]] = []
    photos: dict[int, bytes] = {}
    error: str | None = None
    for item in items:
        outcome = values.get(f"result_{item.id}", "")
        if outcome not in OUTCOMES:
            error = "请为每一项选择 合格 / 不合格 / 不适用"
            continue
        results.append({"item_id": item.id, "result": outcome, "note": values.get(f"note_{item.id}", "")})
        try:
            data = await read_upload(f"photo_{item.id}", form.get(f"photo_{item.id}"))
        except ValidationFailed as exc:
            error = exc.message
            continue
        if data is not None:
            photos[item.id] = data
    if error is None:
        try:
            body = parse_model(
                schemas.InspectionIn, {"unit_id": unit.id, "note": values.get("note", ""), "results": results}
            )
            inspection = await service.create_inspection(
                db, actor, body, photos, uploads_dir=uploads_dir(settings)
            )
        except (ValidationFailed, RequestValidationError) as exc:
            error = _message(exc)
        else:
            return RedirectResponse(f"/hazards/inspections/{inspection.id}", status_code=303)
    context = {"nav": "hazards", "unit": unit, "items": items, "values": values, "error": error}
    return render(request, "hazards/inspect.html", context, status_code=422)


@router.get("/hazards/inspections/{inspection_id}", response_class=HTMLResponse)
async def inspection_page(
    request: Request,
    inspection_id: IdPath,
    db: AsyncSession = Depends(get_db),
    actor: Principal = Depends(get_principal),
) -> Response:
    inspection = await service.get_inspection(db, actor, inspection_id)
    return render(request, "hazards/inspection.html", {"nav": "hazards", "inspection": inspection})


@router.get("/hazards/{hazard_id}", response_class=HTMLResponse)
async def hazard_page(
    request: Request,
    hazard_id: IdPath,
    db: AsyncSession = Depends(get_db),
    actor: Principal = Depends(get_principal),
) -> Response:
    hazard = await service.get_hazard(db, actor, hazard_id)
    return render(request, "hazards/hazard.html", _hazard_context(actor, hazard, None))


def _hazard_context(actor: Principal, hazard: schemas.HazardDetail, error: str | None) -> dict[str, object]:
    return {
        "nav": "hazards",
        "hazard": hazard,
        "error": error,
        "can_submit": actor.role in service.EVIDENCE_ROLES and hazard.status == "open",
        "can_review": actor.role in service.REVIEW_ROLES and hazard.status == "fix_submitted",
    }


@router.post("/hazards/{hazard_id}/evidence", response_class=HTMLResponse)
async def evidence_submit(
    request: Request,
    hazard_id: IdPath,
    db: AsyncSession = Depends(get_db),
    actor: Principal = Depends(get_principal),
    settings: Settings = Depends(get_settings),
) -> Response:
    form = await request.form()
    note = form.get("note")
    try:
        body = parse_model(schemas.EvidenceIn, {"note": note if isinstance(note, str) else ""})
        photo = await read_upload("photo", form.get("photo"))
        await service.submit_evidence(db, actor, hazard_id, body, photo, uploads_dir=uploads_dir(settings))
    except (ValidationFailed, RequestValidationError) as exc:
        hazard = await service.get_hazard(db, actor, hazard_id)
        return render(
            request, "hazards/hazard.html", _hazard_context(actor, hazard, _message(exc)), status_code=422
        )
    return RedirectResponse(f"/hazards/{hazard_id}", status_code=303)


@router.post("/hazards/{hazard_id}/review", response_class=HTMLResponse)
async def review_submit(
    request: Request,
    hazard_id: IdPath,
    db: AsyncSession = Depends(get_db),
    actor: Principal = Depends(get_principal),
) -> Response:
    form = await request.form()
    decision, reason = form.get("decision"), form.get("reason")
    try:
        body = parse_model(
            schemas.ReviewIn,
            {
                "decision": decision if isinstance(decision, str) else "",
                "reason": reason if isinstance(reason, str) else "",
            },
        )
        await service.review_hazard(db, actor, hazard_id, body)
    except (ValidationFailed, RequestValidationError) as exc:
        hazard = await service.get_hazard(db, actor, hazard_id)
        return render(
            request, "hazards/hazard.html", _hazard_context(actor, hazard, _message(exc)), status_code=422
        )
    return RedirectResponse(f"/hazards/{hazard_id}", status_code=303)
