"""JSON API of workforce under /api/v1/workers: parse, authorise, hand to the service.

List items are employments (a worker at a unit, ``id`` = employment id); a person who moved
between units is one ``person_id`` with several employments. ID numbers and phones are masked in
every answer except ``POST /persons/{person_id}/reveal``.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path
from typing import Annotated, Literal

from fastapi import Depends, File, Form, Query, UploadFile
from sqlalchemy.ext.asyncio import AsyncSession

from eqian.core.errors import ValidationFailed
from eqian.core.permissions import Principal
from eqian.core.schemas import MAX_ID, IdPath, IdQuery, Limit, Offset, Page
from eqian.web.deps import get_db, get_principal
from eqian.web.routing import Router
from eqian.workforce import schemas, service, transfer

router = Router(prefix="/api/v1/workers", tags=["workforce"])

Db = Annotated[AsyncSession, Depends(get_db)]
Actor = Annotated[Principal, Depends(get_principal)]
MAX_UPLOAD_BYTES = 10 * 1024 * 1024


@router.get("", response_model=Page[schemas.WorkerOut])
async def list_workers(
    db: Db,
    actor: Actor,
    unit_id: IdQuery = None,
    station_id: IdQuery = None,
    active: bool | None = None,
    status: schemas.ResidenceStatus | None = None,
    q: Annotated[str | None, Query(max_length=64)] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Page[schemas.WorkerOut]:
    """Workers (employments) at units in the caller's scope, active first, newest hires first."""
    f = service.WorkerFilters(
        unit_id=unit_id, station_id=station_id, active=active, status=status, q=q, limit=limit, offset=offset
    )
    items, total = await service.list_workers(db, actor, f)
    return Page(items=items, total=total)


@router.post("/hires", response_model=schemas.WorkerOut, status_code=201)
async def hire(body: schemas.HireIn, db: Db, actor: Actor) -> schemas.WorkerOut:
    """Record one hire; a person still employed elsewhere is refused (409 ``already_employed``)."""
    return await service.hire(db, actor, body)


@router.post("/import", response_model=schemas.ImportReport, status_code=201)
async def import_sheet(
    db: Db,
    actor: Actor,
    unit_id: Annotated[int, Form(ge=1, le=MAX_ID)],
    file: Annotated[UploadFile, File(description="HR sheet (.xlsx or .csv)")],
    dry_run: Annotated[bool, Form()] = False,
) -> schemas.ImportReport:
    """Import a unit's HR sheet: all rows or none; a bad file answers 422 with every bad row."""
    await service.load_unit(db, actor, unit_id)  # out of scope: 404 before reading anything
    data = await file.read(MAX_UPLOAD_BYTES + 1)
    if len(data) > MAX_UPLOAD_BYTES:
        raise ValidationFailed("文件过大（最大 10 MB）", code="file_too_large")
    suffix = Path(file.filename or "").suffix.lower()[:8]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"upload{suffix}"
        path.write_bytes(data)
        return await transfer.import_hires(db, actor, unit_id, path, dry_run=dry_run)


@router.get("/compliance", response_model=schemas.ComplianceReport)
async def compliance(
    db: Db,
    actor: Actor,
    unit_id: IdQuery = None,
    station_id: IdQuery = None,
    date_from: Annotated[dt.date | None, Query(alias="from")] = None,
    date_to: Annotated[dt.date | None, Query(alias="to")] = None,
    by: Literal["unit", "station"] = "unit",
    window_days: Annotated[int | None, Query(ge=1, le=365)] = None,
) -> schemas.ComplianceReport:
    """Registered within the window ÷ hires in the period, per unit (default) or per station."""
    default_from, default_to = service.default_period(service.local_today())
    q = service.ComplianceQuery(
        date_from=date_from or default_from,
        date_to=date_to or default_to,
        unit_id=unit_id,
        station_id=station_id,
        window_days=window_days,
    )
    return await service.compliance(db, actor, q, by=by)


@router.get("/persons/{person_id}", response_model=schemas.PersonOut)
async def get_person(person_id: IdPath, db: Db, actor: Actor) -> schemas.PersonOut:
    return await service.get_person(db, actor, person_id)


@router.post("/persons/{person_id}/reveal", response_model=schemas.RevealedPerson)
async def reveal(person_id: IdPath, db: Db, actor: Actor) -> schemas.RevealedPerson:
    """Unmasked ID number and phone (bureau, station, liaison officers only); audited."""
    return await service.reveal_person(db, actor, person_id)


@router.put("/persons/{person_id}/residence", response_model=schemas.ResidenceOut)
async def update_residence(
    person_id: IdPath, body: schemas.ResidenceIn, db: Db, actor: Actor
) -> schemas.ResidenceOut:
    """Record residence registration or a permit for a person employed in scope."""
    return await service.update_residence(db, actor, person_id, body)


@router.get("/{employment_id}", response_model=schemas.WorkerOut)
async def get_worker(employment_id: IdPath, db: Db, actor: Actor) -> schemas.WorkerOut:
    return await service.get_worker(db, actor, employment_id)


@router.post("/{employment_id}/departure", response_model=schemas.WorkerOut)
async def depart(employment_id: IdPath, body: schemas.DepartureIn, db: Db, actor: Actor) -> schemas.WorkerOut:
    return await service.depart(db, actor, employment_id, body)
