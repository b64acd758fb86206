"""The page of the safety index, ``/safety-index``.

A unit's security staff see their own unit: score, grade, history chart, rank among anonymised
peers, every deduction linked to the records behind it, and the advice. Officers get the station
list with filters, and open any unit of their jurisdiction with ``?unit_id=``. Same service
functions as the JSON API; charts are drawn by ``/static/js/safety_index.js`` from JSON embedded
in the page (no inline scripts: CSP).
"""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from eqian.core.permissions import Principal, ScopeKind
from eqian.core.schemas import IdQuery
from eqian.organizations import service as org_service
from eqian.safety_index import service
from eqian.safety_index.compute import GRADE_LABELS, GRADES
from eqian.safety_index.schemas import MONTH_PATTERN
from eqian.web.deps import get_db, get_principal
from eqian.web.pages import render
from eqian.web.routing import Router

router = Router(include_in_schema=False)
PAGE_SIZE = 50


@router.get("/safety-index", response_class=HTMLResponse)
async def safety_index_page(
    request: Request,
    month: Annotated[str | None, Query(pattern=MONTH_PATTERN)] = None,
    unit_id: IdQuery = None,
    station_id: IdQuery = None,
    category: Annotated[str | None, Query(max_length=32)] = None,
    grade: Annotated[str | None, Query(pattern=r"^(excellent|good|fair|poor)?$")] = None,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    db: AsyncSession = Depends(get_db),
    actor: Principal = Depends(get_principal),
) -> Response:
    if unit_id is None and actor.scope.kind is ScopeKind.UNITS and len(actor.scope.unit_ids) == 1:
        unit_id = next(iter(actor.scope.unit_ids))
    months = await service.computed_months(db)
    if unit_id is not None:
        return await _unit_view(request, db, actor, unit_id, month)
    filters = service.ScoreFilters(
        month=month,
        station_id=station_id,
        category=category or None,
        grade=grade or None,
        limit=PAGE_SIZE,
        offset=offset,
    )
    items, total, shown = await service.list_scores(db, actor, filters)
    counts = await service.grade_counts(db, actor, shown, station_id) if shown else dict.fromkeys(GRADES, 0)
    return render(
        request,
        "safety_index/list.html",
        {
            "nav": "safety_index",
            "items": items,
            "total": total,
            "month": shown,
            "months": months,
            "filters": filters,
            "counts": counts,
            "grades": GRADES,
            "grade_labels": GRADE_LABELS,
            "stations": await org_service.list_stations(db, actor),
            "categories": await org_service.list_categories(db),
            "page_size": PAGE_SIZE,
        },
    )


async def _unit_view(
    request: Request, db: AsyncSession, actor: Principal, unit_id: int, month: str | None
) -> Response:
    history = await service.unit_history(db, actor, unit_id)  # 404 outside the scope
    by_month = {h.month: h for h in history.items}
    current = by_month.get(month) if month else (history.items[-1] if history.items else None)
    peers = await service.peer_scores(db, actor, unit_id, current.month) if current else []
    chart = {
        "history": [{"month": h.month, "score": h.score, "grade": h.grade} for h in history.items],
        "peers": peers,
        "own": current.score if current else None,
        "labels": {"score": "得分", "peers": "同类单位（匿名）", "own": "本单位"},
    }
    return render(
        request,
        "safety_index/unit.html",
        {
            "nav": "safety_index",
            "unit_id": history.unit_id,
            "unit_name": history.unit_name,
            "current": current,
            "months": [h.month for h in reversed(history.items)],
            "chart_json": json.dumps(chart, ensure_ascii=False).replace("<", "\\u003c"),
            "peers": peers,
            "is_unit": actor.scope.kind is ScopeKind.UNITS,
        },
    )
