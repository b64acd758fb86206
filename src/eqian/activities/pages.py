"""HTML pages of police–enterprise activities: the month calendar and an activity's page with its
invitations, attendance, minutes and issues. They call the same service functions as the JSON API."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from eqian.activities import schemas, service
from eqian.core.accounts import Role
from eqian.core.errors import Conflict, ValidationFailed
from eqian.core.permissions import Principal
from eqian.core.schemas import IdPath
from eqian.web.deps import get_db, get_principal
from eqian.web.pages import render
from eqian.web.routing import Router

router = Router(include_in_schema=False)

TEMPLATE_DIR = Path(__file__).parent / "templates"
MONTH_PATTERN = r"^[0-9]{4}-(0[1-9]|1[0-2])$"
WEEKDAYS_ZH = ("周一", "周二", "周三", "周四", "周五", "周六", "周日")
KIND_LABELS = service.KIND_TITLES
STATUS_LABELS = {"planned": "计划", "held": "已举行", "cancelled": "已取消"}
RESPONSE_LABELS = {"invited": "待答复", "accepted": "已接受", "declined": "已婉拒"}
MAX_CALENDAR = 500

Db = Annotated[AsyncSession, Depends(get_db)]
Actor = Annotated[Principal, Depends(get_principal)]


# --- the month grid -----------------------------------------------------------------------------


@dataclass
class Day:
    date: dt.date
    in_month: bool
    today: bool
    activities: list[schemas.ActivityOut] = field(default_factory=list)


def parse_month(value: str | None, today: dt.date) -> dt.date:
    if value is None:
        return today.replace(day=1)
    year, month = value.split("-")
    return dt.date(int(year), int(month), 1)


def shift_month(first: dt.date, delta: int) -> dt.date:
    index = first.year * 12 + first.month - 1 + delta
    return dt.date(index // 12, index % 12 + 1, 1)


def month_grid(first: dt.date, today: dt.date) -> list[list[Day]]:
    """Whole weeks, Monday first: from the Monday on or before the 1st to the Sunday on or after the end."""
    last = shift_month(first, 1) - dt.timedelta(days=1)
    start = service.week_monday(first)
    end = last + dt.timedelta(days=6 - last.weekday())
    days = [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]
    return [
        [Day(d, d.month == first.month, d == today) for d in days[i : i + 7]] for i in range(0, len(days), 7)
    ]


@router.get("/activities", response_class=HTMLResponse)
async def calendar(
    request: Request,
    db: Db,
    actor: Actor,
    month: Annotated[str | None, Query(max_length=7, pattern=MONTH_PATTERN)] = None,
) -> Response:
    today = service.local_today()
    first = parse_month(month, today)
    weeks = month_grid(first, today)
    lo = service.local_bounds(weeks[0][0].date, weeks[0][0].date)[0]
    hi = service.local_bounds(weeks[-1][-1].date, weeks[-1][-1].date)[1]
    items, total = await service.list_activities(
        db, actor, service.ActivityFilters(starts_from=lo, starts_before=hi, limit=MAX_CALENDAR)
    )
    by_day: dict[dt.date, list[schemas.ActivityOut]] = {}
    for a in items:
        by_day.setdefault(a.starts_at.astimezone(service.LOCAL_TZ).date(), []).append(a)
    for week in weeks:
        for day in week:
            day.activities = by_day.get(day.date, [])
    in_month = [a for a in items if a.starts_at.astimezone(service.LOCAL_TZ).date().month == first.month]
    return render(
        request,
        "activities/calendar.html",
        {
            "nav": "activities",
            "month": first,
            "prev_month": shift_month(first, -1).strftime("%Y-%m"),
            "next_month": shift_month(first, 1).strftime("%Y-%m"),
            "weeks": weeks,
            "weekdays": WEEKDAYS_ZH,
            "month_items": in_month,
            "truncated": total > len(items),
            "kind_labels": KIND_LABELS,
            "status_labels": STATUS_LABELS,
            "local_tz": service.LOCAL_TZ,
        },
    )


# --- one activity --------------------------------------------------------------------------------


async def _detail_page(
    request: Request,
    db: AsyncSession,
    actor: Principal,
    activity_id: int,
    *,
    error: str | None = None,
    status: int = 200,
) -> Response:
    detail = await service.get_activity(db, actor, activity_id)
    activity = await service.load_for_page(db, actor, activity_id)
    manage = service.can_manage(actor, activity)
    return render(
        request,
        "activities/detail.html",
        {
            "nav": "activities",
            "a": detail,
            "manage": manage,
            "can_attend": manage or actor.role is Role.LIAISON_OFFICER,
            "is_unit": actor.role is Role.UNIT_SECURITY,
            "own_units": actor.scope.unit_ids,
            "can_raise": manage or actor.role in (Role.LIAISON_OFFICER, Role.UNIT_SECURITY),
            "error": error,
            "kind_labels": KIND_LABELS,
            "status_labels": STATUS_LABELS,
            "response_labels": RESPONSE_LABELS,
        },
        status_code=status,
    )


@router.get("/activities/{activity_id}", response_class=HTMLResponse)
async def detail(request: Request, activity_id: IdPath, db: Db, actor: Actor) -> Response:
    return await _detail_page(request, db, actor, activity_id)


async def _form(request: Request) -> dict[str, str]:
    raw = await request.form()
    return {k: v.strip() for k, v in raw.items() if isinstance(v, str)}


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"])
    return f"{where}: {err['msg']}" if where else str(err["msg"])


@router.post("/activities/{activity_id}/invitations/{invitation_id}/attendance", response_class=HTMLResponse)
async def attendance_submit(
    request: Request, activity_id: IdPath, invitation_id: IdPath, db: Db, actor: Actor
) -> Response:
    form = await _form(request)
    try:
        body = schemas.AttendanceIn(
            attended=form.get("attended") == "yes",
            attendee_count=int(form.get("attendee_count") or 0),
            attendee_names=form.get("attendee_names", ""),
        )
    except ValueError as exc:  # int() and pydantic's ValidationError, which is a ValueError
        message = _first_error(exc) if isinstance(exc, ValidationError) else "attendee_count: 请填写整数"
        return await _detail_page(request, db, actor, activity_id, error=message, status=422)
    try:
        await service.record_attendance(db, actor, activity_id, invitation_id, body)
    except (ValidationFailed, Conflict) as exc:
        await db.rollback()
        return await _detail_page(request, db, actor, activity_id, error=exc.message, status=exc.status_code)
    return RedirectResponse(f"/activities/{activity_id}#inv-{invitation_id}", status_code=303)


@router.post("/activities/{activity_id}/invitations/{invitation_id}/response", response_class=HTMLResponse)
async def response_submit(
    request: Request, activity_id: IdPath, invitation_id: IdPath, db: Db, actor: Actor
) -> Response:
    form = await _form(request)
    if form.get("response") not in ("accepted", "declined"):
        return await _detail_page(
            request, db, actor, activity_id, error="response: 请选择接受或婉拒", status=422
        )
    body = schemas.RespondIn(response="accepted" if form["response"] == "accepted" else "declined")
    try:
        await service.respond(db, actor, activity_id, invitation_id, body)
    except Conflict as exc:
        await db.rollback()
        return await _detail_page(request, db, actor, activity_id, error=exc.message, status=exc.status_code)
    return RedirectResponse(f"/activities/{activity_id}", status_code=303)


@router.post("/activities/{activity_id}/minutes", response_class=HTMLResponse)
async def minutes_submit(request: Request, activity_id: IdPath, db: Db, actor: Actor) -> Response:
    form = await _form(request)
    try:
        body = schemas.ActivityUpdate(minutes=form.get("minutes", ""))
        await service.update_activity(db, actor, activity_id, body)
    except ValidationError as exc:
        return await _detail_page(request, db, actor, activity_id, error=_first_error(exc), status=422)
    except (ValidationFailed, Conflict) as exc:
        await db.rollback()
        return await _detail_page(request, db, actor, activity_id, error=exc.message, status=exc.status_code)
    return RedirectResponse(f"/activities/{activity_id}", status_code=303)


@router.post("/activities/{activity_id}/issues", response_class=HTMLResponse)
async def issue_submit(request: Request, activity_id: IdPath, db: Db, actor: Actor) -> Response:
    form = await _form(request)
    raw_unit = form.get("unit_id", "")
    try:
        body = schemas.IssueIn(
            text=form.get("text", ""),
            unit_id=int(raw_unit) if raw_unit.isascii() and raw_unit.isdigit() else None,
        )
        await service.add_issue(db, actor, activity_id, body)
    except ValidationError as exc:
        return await _detail_page(request, db, actor, activity_id, error=_first_error(exc), status=422)
    except (ValidationFailed, Conflict) as exc:
        await db.rollback()
        return await _detail_page(request, db, actor, activity_id, error=exc.message, status=exc.status_code)
    return RedirectResponse(f"/activities/{activity_id}#issues", status_code=303)
