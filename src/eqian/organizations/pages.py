"""HTML pages of the registry; they call the same service functions as the JSON API."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from eqian.core.permissions import REVEAL_ROLES, Principal
from eqian.core.schemas import IdPath
from eqian.organizations import schemas, service
from eqian.organizations.categories import STATUS_LABELS_ZH
from eqian.web.deps import get_db, get_principal
from eqian.web.pages import render
from eqian.web.routing import Router

router = Router(include_in_schema=False)
PAGE_SIZE = 50


def _opt_int(value: str | None) -> int | None:
    # Empty <select> options arrive as "", which means "no filter", not a bad request.
    return int(value) if value and value.isascii() and value.isdigit() and len(value) <= 9 else None


@router.get("/units", response_class=HTMLResponse)
async def unit_list(
    request: Request,
    station_id: Annotated[str | None, Query(max_length=12)] = None,
    category: Annotated[str | None, Query(max_length=32)] = None,
    service_point_id: Annotated[str | None, Query(max_length=12)] = None,
    status: Annotated[str | None, Query(max_length=16)] = None,
    q: Annotated[str | None, Query(max_length=100)] = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    db: AsyncSession = Depends(get_db),
    actor: Principal = Depends(get_principal),
) -> Response:
    filters = service.UnitFilters(
        station_id=_opt_int(station_id),
        category=category or None,
        service_point_id=_opt_int(service_point_id),
        status=status if status in STATUS_LABELS_ZH else None,
        q=q or None,
        limit=PAGE_SIZE,
        offset=(page - 1) * PAGE_SIZE,
    )
    units, total = await service.list_units(db, actor, filters)
    context = {
        "nav": "units",
        "units": units,
        "total": total,
        "page": page,
        "pages": max(1, -(-total // PAGE_SIZE)),
        "filters": filters,
        "stations": await service.list_stations(db, actor),
        "service_points": await service.list_service_points(db, actor, filters.station_id),
        "categories": await service.list_categories(db),
        "status_labels": STATUS_LABELS_ZH,
    }
    template = (
        "organizations/_unit_rows.html"
        if request.headers.get("HX-Request")
        else "organizations/unit_list.html"
    )
    return render(request, template, context)


@router.get("/units/{unit_id}", response_class=HTMLResponse)
async def unit_detail(
    request: Request,
    unit_id: IdPath,
    db: AsyncSession = Depends(get_db),
    actor: Principal = Depends(get_principal),
) -> Response:
    unit = await service.get_unit(db, actor, unit_id)
    return render(
        request,
        "organizations/unit_detail.html",
        {
            "nav": "units",
            "unit": unit,
            "can_reveal": actor.role in REVEAL_ROLES,
            "status_labels": STATUS_LABELS_ZH,
        },
    )


@router.post("/units/{unit_id}/contacts/{contact_id}/reveal", response_class=HTMLResponse)
async def reveal_contact(
    request: Request,
    unit_id: IdPath,
    contact_id: IdPath,
    db: AsyncSession = Depends(get_db),
    actor: Principal = Depends(get_principal),
) -> Response:
    contact: schemas.RevealedContact = await service.reveal_contact(db, actor, unit_id, contact_id)
    return render(request, "organizations/_revealed_phone.html", {"contact": contact})


@router.get("/stations/{station_id}", response_class=HTMLResponse)
async def station_overview(
    request: Request,
    station_id: IdPath,
    db: AsyncSession = Depends(get_db),
    actor: Principal = Depends(get_principal),
) -> Response:
    station = await service.get_station(db, actor, station_id)
    by_category = await service.unit_counts_by_category(db, actor, station_id)
    return render(
        request,
        "organizations/station.html",
        {
            "nav": "home",
            "station": station,
            "service_points": await service.list_service_points(db, actor, station_id),
            "by_category": by_category,
        },
    )
