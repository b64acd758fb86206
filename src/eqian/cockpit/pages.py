"""Pages of the cockpit: the dashboard (/cockpit), the drill-down (/cockpit/drill) and the
full-screen command-room view (/cockpit/big-screen). They read through the same service as the
JSON API; the charts and the live feed are drawn by /static/js/cockpit.js from that API."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from eqian.cockpit import service
from eqian.core.months import check as check_month
from eqian.core.months import shift as shift_month
from eqian.core.permissions import Principal
from eqian.organizations import service as org_service
from eqian.web.deps import get_db, get_principal
from eqian.web.pages import render
from eqian.web.routing import Router

router = Router(include_in_schema=False)
MONTHS_SHOWN = 25


def _opt_int(value: str | None) -> int | None:
    return int(value) if value and value.isascii() and value.isdigit() and len(value) <= 9 else None


def _filters(month: str | None, station_id: str | None, category: str | None) -> service.Filters:
    try:
        m = check_month(month) if month else service.default_month()
    except Exception:
        m = service.default_month()
    return service.Filters(month=m, station_id=_opt_int(station_id), category=category or None)


def _query(f: service.Filters) -> str:
    parts = [f"month={f.month}"]
    if f.station_id:
        parts.append(f"station_id={f.station_id}")
    if f.category:
        parts.append(f"category={f.category}")
    return "&".join(parts)


async def _context(db: AsyncSession, actor: Principal, f: service.Filters) -> dict[str, object]:
    summary = await service.summary(db, actor, f)
    allowed = service.station_ids(actor)
    stations = [s for s in await org_service.list_stations(db, actor) if allowed is None or s.id in allowed]
    latest = service.default_month()
    return {
        "nav": "cockpit",
        "summary": summary,
        "filters": f,
        "query": _query(f),
        "stations": stations,
        "categories": await org_service.list_categories(db),
        "months": [shift_month(shift_month(latest, 1), -i) for i in range(MONTHS_SHOWN)],
        "grades": service.GRADE_LABELS,
    }


@router.get("/cockpit", response_class=HTMLResponse)
async def dashboard(
    request: Request,
    month: Annotated[str | None, Query(max_length=7)] = None,
    station_id: Annotated[str | None, Query(max_length=12)] = None,
    category: Annotated[str | None, Query(max_length=32)] = None,
    db: AsyncSession = Depends(get_db),
    actor: Principal = Depends(get_principal),
) -> Response:
    f = _filters(month, station_id, category)
    return render(request, "cockpit/index.html", await _context(db, actor, f))


@router.get("/cockpit/big-screen", response_class=HTMLResponse)
async def big_screen(
    request: Request,
    month: Annotated[str | None, Query(max_length=7)] = None,
    station_id: Annotated[str | None, Query(max_length=12)] = None,
    category: Annotated[str | None, Query(max_length=32)] = None,
    db: AsyncSession = Depends(get_db),
    actor: Principal = Depends(get_principal),
) -> Response:
    f = _filters(month, station_id, category)
    return render(request, "cockpit/big_screen.html", await _context(db, actor, f))


@router.get("/cockpit/drill", response_class=HTMLResponse)
async def drill(
    request: Request,
    kpi: Annotated[str, Query(max_length=40)],
    month: Annotated[str | None, Query(max_length=7)] = None,
    station_id: Annotated[str | None, Query(max_length=12)] = None,
    category: Annotated[str | None, Query(max_length=32)] = None,
    db: AsyncSession = Depends(get_db),
    actor: Principal = Depends(get_principal),
) -> Response:
    f = _filters(month, station_id, category)
    result = await service.drill(db, actor, f, kpi)
    return render(
        request,
        "cockpit/drill.html",
        {"nav": "cockpit", "drill": result, "filters": f, "query": _query(f)},
    )
