"""JSON API of the safety index: the month's scores (scoped), a unit's history, and computing a month.

``GET /api/v1/safety-index?month=YYYY-MM`` (default: the latest computed month; filters
``station_id``, ``category``, ``grade``, ``unit_id``; ``order=asc`` lowest score first, or ``desc``),
``GET /api/v1/units/{id}/safety-index`` (every computed month, oldest first; 404 outside scope),
``POST /api/v1/safety-index/compute`` {month, replace} (bureau admin).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from eqian.core.permissions import Principal
from eqian.core.schemas import IdPath, IdQuery, Limit, Offset
from eqian.safety_index import schemas, service
from eqian.web.deps import get_db, get_principal
from eqian.web.routing import Router

router = Router(tags=["safety-index"])

Db = Annotated[AsyncSession, Depends(get_db)]
Actor = Annotated[Principal, Depends(get_principal)]
Month = Annotated[str | None, Query(pattern=schemas.MONTH_PATTERN)]


class ScorePage(BaseModel):
    items: list[schemas.ScoreOut]
    total: int
    month: str | None


@router.get("/api/v1/safety-index", response_model=ScorePage)
async def list_scores(
    db: Db,
    actor: Actor,
    month: Month = None,
    station_id: IdQuery = None,
    unit_id: IdQuery = None,
    category: Annotated[str | None, Query(max_length=32)] = None,
    grade: Annotated[str | None, Query(pattern=r"^(excellent|good|fair|poor)$")] = None,
    order: Annotated[str, Query(pattern=r"^(asc|desc)$")] = "asc",
    limit: Limit = 50,
    offset: Offset = 0,
) -> ScorePage:
    """Scores of units in the caller's jurisdiction for one month, with ranks and every deduction."""
    filters = service.ScoreFilters(
        month=month,
        station_id=station_id,
        category=category,
        grade=grade,
        unit_id=unit_id,
        order=order,
        limit=limit,
        offset=offset,
    )
    items, total, shown = await service.list_scores(db, actor, filters)
    return ScorePage(items=items, total=total, month=shown)


@router.get("/api/v1/units/{unit_id}/safety-index", response_model=schemas.UnitHistory)
async def unit_history(unit_id: IdPath, db: Db, actor: Actor) -> schemas.UnitHistory:
    """A unit's index for every computed month, oldest first."""
    return await service.unit_history(db, actor, unit_id)


@router.post("/api/v1/safety-index/compute", response_model=schemas.ComputeOut)
async def compute(body: schemas.ComputeIn, db: Db, actor: Actor) -> schemas.ComputeOut:
    """Compute (or, for the same model version, recompute) a month; another version needs ``replace``."""
    r = await service.compute_month(db, actor, body.month, replace=body.replace)
    return schemas.ComputeOut(
        month=r.month,
        units=r.units,
        config_version=r.config_version,
        replaced_version=r.replaced_version,
        seconds=r.seconds,
    )
