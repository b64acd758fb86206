"""Pages of enterprise requests: a unit's request form and history, an officer's queue, a
request's page (reply, resolve, rate). Same service functions as the API; forms carry CSRF."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from eqian.core.accounts import Role
from eqian.core.errors import Conflict, ValidationFailed
from eqian.core.permissions import Principal
from eqian.core.schemas import IdPath
from eqian.mediation.pages import form_values, message_of, parse
from eqian.requests import schemas, service
from eqian.web.deps import get_db, get_principal
from eqian.web.pages import render
from eqian.web.routing import Router

router = Router(include_in_schema=False)
PAGE_SIZE = 50
QUEUE_TABS = ("open", "overdue", "resolved")
Db = Annotated[AsyncSession, Depends(get_db)]
Actor = Annotated[Principal, Depends(get_principal)]


def _labels() -> dict[str, dict[str, str]]:
    return {"kind": schemas.KINDS, "status": schemas.STATUSES}


async def _home_context(
    db: AsyncSession, actor: Principal, tab: str, values: dict[str, str], error: str | None
) -> dict[str, object]:
    counts: dict[str, int] = {}
    for name in QUEUE_TABS:
        _, counts[name] = await service.list_requests(db, actor, status=name, limit=1)
    items, _ = await service.list_requests(db, actor, status=tab, limit=PAGE_SIZE)
    _rows, summary = await service.stats(db, actor, "kind")
    return {
        "nav": "requests",
        "tab": tab,
        "tabs": QUEUE_TABS,
        "counts": counts,
        "items": items,
        "summary": summary,
        "stats": _rows,
        "labels": _labels(),
        "sla": schemas.SLA_DAYS,
        "is_unit": actor.role is Role.UNIT_SECURITY,
        "values": values,
        "error": error,
    }


@router.get("/requests", response_class=HTMLResponse)
async def home(
    request: Request, db: Db, actor: Actor, tab: Annotated[str, Query(max_length=16)] = "open"
) -> Response:
    """A unit's security head: the form and the unit's history; officers: the queue."""
    tab = tab if tab in QUEUE_TABS else "open"
    return render(request, "requests/home.html", await _home_context(db, actor, tab, {}, None))


@router.post("/requests", response_class=HTMLResponse)
async def submit(request: Request, db: Db, actor: Actor) -> Response:
    values = form_values(await request.form())
    try:
        body = parse(
            schemas.RequestIn,
            {
                "kind": values.get("kind", ""),
                "title": values.get("title", ""),
                "body": values.get("body", ""),
            },
        )
        created = await service.submit(db, actor, body)
    except (ValidationFailed, ValidationError) as exc:
        context = await _home_context(db, actor, "open", values, message_of(exc))
        return render(request, "requests/home.html", context, status_code=422)
    return RedirectResponse(f"/requests/{created.id}", status_code=303)


async def _detail_context(
    db: AsyncSession, actor: Principal, request_id: int, error: str | None = None
) -> dict[str, object]:
    item = await service.get_request(db, actor, request_id)
    return {
        "nav": "requests",
        "item": item,
        "error": error,
        "labels": _labels(),
        "can_handle": actor.role in service.HANDLE_ROLES and item.status != "resolved",
        "can_rate": actor.role in service.RATE_ROLES and item.status == "resolved" and item.rating is None,
    }


@router.get("/requests/{request_id}", response_class=HTMLResponse)
async def detail(request: Request, request_id: IdPath, db: Db, actor: Actor) -> Response:
    return render(request, "requests/request.html", await _detail_context(db, actor, request_id))


@router.post("/requests/{request_id}/{action}", response_class=HTMLResponse)
async def act(request: Request, request_id: IdPath, action: str, db: Db, actor: Actor) -> Response:
    values = form_values(await request.form())
    try:
        if action == "reply":
            await service.reply(
                db, actor, request_id, parse(schemas.ReplyIn, {"text": values.get("text", "")})
            )
        elif action == "resolve":
            body = parse(schemas.ResolveIn, {"resolution": values.get("resolution", "")})
            await service.resolve(db, actor, request_id, body)
        elif action == "rate":
            rating = values.get("rating", "")
            body_r = parse(
                schemas.RateIn,
                {
                    "rating": int(rating) if rating.isdigit() and len(rating) == 1 else 0,
                    "comment": values.get("comment", ""),
                },
            )
            await service.rate(db, actor, request_id, body_r)
        else:
            await service.get_request(db, actor, request_id)  # 404 outside the scope
            raise ValidationFailed("未知的操作", code="unknown_action")
    except (ValidationFailed, ValidationError, Conflict) as exc:
        await db.rollback()
        context = await _detail_context(db, actor, request_id, message_of(exc))
        return render(request, "requests/request.html", context, status_code=422)
    return RedirectResponse(f"/requests/{request_id}", status_code=303)
