"""JSON API of inspections and hazards under /api/v1/inspections and /api/v1/hazards.

An inspection is posted as JSON (no photos) or as ``multipart/form-data`` with the JSON in the
field ``data`` and one optional photo per item in ``photo_<item_id>`` (JPEG/PNG, ≤ 5 MB, type
checked from the file's bytes). Evidence of a fix is multipart: ``note`` and an optional ``photo``.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, TypeVar

from fastapi import Depends, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, Response
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import UploadFile

from eqian.core.config import Settings
from eqian.core.errors import field_error
from eqian.core.permissions import Principal
from eqian.core.schemas import IdPath, IdQuery, InputModel, Limit, Offset, Page
from eqian.hazards import schemas, service
from eqian.web.deps import get_db, get_principal, get_settings
from eqian.web.routing import Router

inspections = Router(prefix="/api/v1/inspections", tags=["hazards"])
hazards = Router(prefix="/api/v1/hazards", tags=["hazards"])
M = TypeVar("M", bound=InputModel)

Db = Annotated[AsyncSession, Depends(get_db)]
Actor = Annotated[Principal, Depends(get_principal)]
Config = Annotated[Settings, Depends(get_settings)]
StatusFilter = Annotated[str | None, Query(pattern=r"^(open|fix_submitted|verified|overdue|unresolved)$")]


def uploads_dir(settings: Settings) -> Path:
    return service.local_uploads(settings.var_dir)


async def read_upload(field: str, value: object) -> bytes | None:
    """The bytes of an uploaded file, read no further than the size limit allows; empty is none."""
    if not isinstance(value, UploadFile):
        if value in (None, ""):
            return None
        raise field_error(field, "须为上传的文件", "not_a_file")
    data = await value.read(service.MAX_PHOTO_BYTES + 1)
    return data or None


def parse_model(model: type[M], raw: str | bytes | dict[str, object], loc: str = "body") -> M:
    """Validate like FastAPI would, so a bad body is the usual 422 and never a 500."""
    try:
        return model.model_validate(raw) if isinstance(raw, dict) else model.model_validate_json(raw)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": (loc, *e["loc"])} for e in exc.errors(include_url=False, include_context=False)]
        ) from exc


# --- checklists --------------------------------------------------------------------------------


@inspections.get("/checklist-items", response_model=Page[schemas.ChecklistItemOut])
async def list_checklist_items(
    db: Db,
    actor: Actor,
    category: Annotated[str | None, Query(max_length=32)] = None,
    include_retired: bool = False,
) -> Page[schemas.ChecklistItemOut]:
    """Checklist items by unit category (``generic`` for categories without a list of their own)."""
    items = await service.list_checklist_items(db, actor, category, include_retired)
    return Page(items=items, total=len(items))


@inspections.post("/checklist-items", response_model=schemas.ChecklistItemOut, status_code=201)
async def add_checklist_item(body: schemas.ChecklistItemIn, db: Db, actor: Actor) -> schemas.ChecklistItemOut:
    """Add an item to a category's checklist (bureau admin)."""
    return await service.add_checklist_item(db, actor, body)


@inspections.post("/checklist-items/{item_id}/retire", response_model=schemas.ChecklistItemOut)
async def retire_checklist_item(item_id: IdPath, db: Db, actor: Actor) -> schemas.ChecklistItemOut:
    """Take an item off the form (bureau admin); past results keep it."""
    return await service.retire_checklist_item(db, actor, item_id)


# --- inspections ---------------------------------------------------------------------------------


@inspections.get("", response_model=Page[schemas.InspectionOut])
async def list_inspections(
    db: Db, actor: Actor, unit_id: IdQuery = None, limit: Limit = 50, offset: Offset = 0
) -> Page[schemas.InspectionOut]:
    """Inspections of units in the caller's jurisdiction, newest first."""
    items, total = await service.list_inspections(db, actor, unit_id=unit_id, limit=limit, offset=offset)
    return Page(items=items, total=total)


@inspections.get("/{inspection_id}", response_model=schemas.InspectionOut)
async def get_inspection(inspection_id: IdPath, db: Db, actor: Actor) -> schemas.InspectionOut:
    return await service.get_inspection(db, actor, inspection_id)


@inspections.post("", response_model=schemas.InspectionOut, status_code=201)
async def create_inspection(
    request: Request, db: Db, actor: Actor, settings: Config
) -> schemas.InspectionOut:
    """Record an inspection (officer, liaison, bureau) or a self-inspection (the unit's security
    staff); every failed item becomes a hazard with a deadline by severity."""
    photos: dict[int, bytes] = {}
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        form = await request.form()
        raw = form.get("data")
        if not isinstance(raw, str):
            raise field_error("data", "缺少检查数据 (JSON)", "required")
        body = parse_model(schemas.InspectionIn, raw, "data")
        for key, value in form.multi_items():
            if key.startswith("photo_"):
                suffix = key.removeprefix("photo_")
                if not (suffix.isascii() and suffix.isdigit() and len(suffix) <= 9):
                    raise field_error(key, "未知的照片字段", "unknown_field")
                data = await read_upload(key, value)
                if data is not None:
                    photos[int(suffix)] = data
    else:
        body = parse_model(schemas.InspectionIn, await request.body())
    return await service.create_inspection(db, actor, body, photos, uploads_dir=uploads_dir(settings))


# --- hazards -------------------------------------------------------------------------------------


@hazards.get("", response_model=Page[schemas.HazardOut])
async def list_hazards(
    db: Db,
    actor: Actor,
    status: StatusFilter = None,
    unit_id: IdQuery = None,
    station_id: IdQuery = None,
    category: Annotated[str | None, Query(max_length=32)] = None,
    severity: schemas.Severity | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Page[schemas.HazardOut]:
    """Hazards in scope; ``status`` also takes ``overdue`` (past deadline, unverified) and ``unresolved``."""
    filters = service.HazardFilters(
        status=status,
        unit_id=unit_id,
        station_id=station_id,
        category=category,
        severity=severity,
        limit=limit,
        offset=offset,
    )
    items, total = await service.list_hazards(db, actor, filters)
    return Page(items=items, total=total)


@hazards.get("/stats", response_model=Page[schemas.StatsRow])
async def hazard_stats(
    db: Db,
    actor: Actor,
    group: schemas.StatsGroup = "unit",
    since: Annotated[dt.date | None, Query(alias="from")] = None,
    until: Annotated[dt.date | None, Query(alias="to")] = None,
) -> Page[schemas.StatsRow]:
    """发现 / 整改 / 逾期 (found / verified / overdue) per unit, station or month; dates inclusive."""
    items = await service.stats(db, actor, group, since=since, until=until)
    return Page(items=items, total=len(items))


_BINARY = {"schema": {"type": "string", "format": "binary"}}


@hazards.get(
    "/photos/{name}",
    response_class=Response,
    responses={200: {"description": "照片", "content": {"image/jpeg": _BINARY, "image/png": _BINARY}}},
)
async def get_photo(name: str, db: Db, actor: Actor, settings: Config) -> Response:
    """A photo of an inspection or a fix, only for a unit in the caller's jurisdiction."""
    if not service.PHOTO_NAME.fullmatch(name):
        raise field_error("name", "无效的照片名", "invalid")
    path = await service.photo_file(db, actor, name, uploads_dir(settings))
    media = "image/png" if name.endswith(".png") else "image/jpeg"
    return FileResponse(path, media_type=media, headers={"Cache-Control": "private, max-age=3600"})


@hazards.get("/{hazard_id}", response_model=schemas.HazardDetail)
async def get_hazard(hazard_id: IdPath, db: Db, actor: Actor) -> schemas.HazardDetail:
    """One hazard with its timeline."""
    return await service.get_hazard(db, actor, hazard_id)


@hazards.post("/{hazard_id}/evidence", response_model=schemas.HazardDetail)
async def submit_evidence(
    hazard_id: IdPath, request: Request, db: Db, actor: Actor, settings: Config
) -> schemas.HazardDetail:
    """The unit's security staff report the fix: form ``note`` + optional ``photo``, or JSON ``{"note"}``."""
    photo: bytes | None = None
    if request.headers.get("content-type", "").startswith(
        ("multipart/form-data", "application/x-www-form-urlencoded")
    ):
        form = await request.form()
        note = form.get("note")
        body = parse_model(schemas.EvidenceIn, {"note": note if isinstance(note, str) else ""})
        photo = await read_upload("photo", form.get("photo"))
    else:
        body = parse_model(schemas.EvidenceIn, await request.body())
    return await service.submit_evidence(db, actor, hazard_id, body, photo, uploads_dir=uploads_dir(settings))


@hazards.post("/{hazard_id}/review", response_model=schemas.HazardDetail)
async def review_hazard(
    hazard_id: IdPath, body: schemas.ReviewIn, db: Db, actor: Actor
) -> schemas.HazardDetail:
    """An officer verifies the fix or rejects it with a reason (back to open)."""
    return await service.review_hazard(db, actor, hazard_id, body)
