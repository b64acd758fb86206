"""JSON API of the cockpit under /api/v1/cockpit: KPIs with 同比/环比, chart series, map, feed,
drill-down. Bureau admins see every station, station officers their own; other roles get 403."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import Depends, Query
from pydantic import Field, StringConstraints
from sqlalchemy.ext.asyncio import AsyncSession

from eqian.cockpit import service
from eqian.core.months import check as check_month
from eqian.core.permissions import Principal
from eqian.core.schemas import IdQuery, InputModel
from eqian.web.deps import get_db, get_principal
from eqian.web.routing import Router

router = Router(prefix="/api/v1/cockpit", tags=["cockpit"])
OUTLINE_PATH = Path(__file__).with_name("outline.geojson")

Db = Annotated[AsyncSession, Depends(get_db)]
Actor = Annotated[Principal, Depends(get_principal)]
Month = Annotated[str | None, Query(pattern=r"^\d{4}-\d{2}$")]
Category = Annotated[str | None, Query(max_length=32)]
KpiCode = Annotated[str, Query(max_length=40)]


def filters(month: str | None, station_id: int | None, category: str | None) -> service.Filters:
    m = check_month(month) if month else service.default_month()
    return service.Filters(month=m, station_id=station_id, category=category or None)


@router.get("/summary")
async def summary(
    db: Db, actor: Actor, month: Month = None, station_id: IdQuery = None, category: Category = None
) -> dict[str, Any]:
    """Every KPI for the month with the same month a year before (同比) and the month before (环比),
    their changes (percentage points for rates), and the index grade distribution."""
    return await service.summary(db, actor, filters(month, station_id, category))


@router.get("/trend")
async def trend(
    db: Db,
    actor: Actor,
    kpi: KpiCode,
    month: Month = None,
    months: Annotated[int, Query(ge=1, le=36)] = 13,
    station_id: IdQuery = None,
    category: Category = None,
) -> dict[str, Any]:
    """One KPI per month, ``months`` months up to ``month``, each with its value a year before."""
    items = await service.trend(db, actor, filters(month, station_id, category), kpi, months)
    return {"items": items, "total": len(items)}


@router.get("/breakdown")
async def breakdown(
    db: Db,
    actor: Actor,
    kpi: KpiCode,
    by: Literal["station", "category"] = "category",
    month: Month = None,
    station_id: IdQuery = None,
    category: Category = None,
) -> dict[str, Any]:
    """One KPI per station or per unit category for the month."""
    items = await service.breakdown(db, actor, filters(month, station_id, category), kpi, by)
    return {"items": items, "total": len(items)}


@router.get("/map")
async def unit_map(
    db: Db, actor: Actor, month: Month = None, station_id: IdQuery = None, category: Category = None
) -> dict[str, Any]:
    """Units as points with their safety-index grade of the month (null before it is computed)."""
    items = await service.unit_points(db, actor, filters(month, station_id, category))
    return {"items": items, "total": len(items)}


@cache
def _outline() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(OUTLINE_PATH.read_text(encoding="utf-8"))
    return data


@router.get("/outline")
async def outline(actor: Actor) -> dict[str, Any]:
    """The district outline (GeoJSON, vendored, simplified) the map draws the units over."""
    service.station_ids(actor)
    return _outline()


@router.get("/feed")
async def feed(db: Db, actor: Actor, limit: Annotated[int, Query(ge=1, le=100)] = 20) -> dict[str, Any]:
    """The latest live-feed items; new ones arrive over ``/ws`` (topic ``feed``)."""
    items = await service.feed_backlog(db, actor, limit)
    return {"items": items, "total": len(items)}


class RefreshIn(InputModel):
    months: list[Annotated[str, StringConstraints(pattern=r"^\d{4}-\d{2}$")]] = Field(
        min_length=1, max_length=36
    )


@router.post("/refresh")
async def refresh(body: RefreshIn, db: Db, actor: Actor) -> dict[str, Any]:
    """Recompute the rollups of the given months now (bureau admin, audited)."""
    done = await service.refresh(db, actor, body.months)
    return {"items": [{"month": m, "rows": n} for m, n in done.items()], "total": len(done)}


@router.get("/drill")
async def drill(
    db: Db,
    actor: Actor,
    kpi: KpiCode,
    month: Month = None,
    station_id: IdQuery = None,
    category: Category = None,
) -> dict[str, Any]:
    """The units behind a figure (from the raw rows of that month), and the domain list's link."""
    return await service.drill(db, actor, filters(month, station_id, category), kpi)
