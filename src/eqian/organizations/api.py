"""JSON API of the organization registry: parse, authorise, hand to the service."""

from __future__ import annotations

from fastapi import Depends, Query
from sqlalchemy.ext.asyncio import AsyncSession

from eqian.core.permissions import Principal
from eqian.core.schemas import IdPath, IdQuery, Limit, Offset, Page
from eqian.organizations import schemas, service
from eqian.web.deps import get_db, get_principal
from eqian.web.routing import Router

router = Router(prefix="/api/v1", tags=["organizations"])


@router.get("/stations", response_model=Page[schemas.StationOut])
async def list_stations(
    db: AsyncSession = Depends(get_db), actor: Principal = Depends(get_principal)
) -> Page[schemas.StationOut]:
    items = await service.list_stations(db, actor)
    return Page(items=items, total=len(items))


@router.get("/stations/{station_id}", response_model=schemas.StationOut)
async def get_station(
    station_id: IdPath, db: AsyncSession = Depends(get_db), actor: Principal = Depends(get_principal)
) -> schemas.StationOut:
    return await service.get_station(db, actor, station_id)


@router.get("/service-points", response_model=Page[schemas.ServicePointOut])
async def list_service_points(
    station_id: IdQuery = None,
    db: AsyncSession = Depends(get_db),
    actor: Principal = Depends(get_principal),
) -> Page[schemas.ServicePointOut]:
    items = await service.list_service_points(db, actor, station_id)
    return Page(items=items, total=len(items))


@router.get("/unit-categories", response_model=Page[schemas.CategoryOut])
async def list_categories(
    db: AsyncSession = Depends(get_db), _actor: Principal = Depends(get_principal)
) -> Page[schemas.CategoryOut]:
    items = await service.list_categories(db)
    return Page(items=items, total=len(items))


@router.get("/units", response_model=Page[schemas.UnitOut])
async def list_units(
    station_id: IdQuery = None,
    category: str | None = Query(default=None, max_length=32),
    service_point_id: IdQuery = None,
    status: schemas.UnitStatus | None = None,
    above_scale: bool | None = None,
    q: str | None = Query(default=None, max_length=100),
    sort: schemas.UnitSort = "name",
    limit: Limit = 50,
    offset: Offset = 0,
    db: AsyncSession = Depends(get_db),
    actor: Principal = Depends(get_principal),
) -> Page[schemas.UnitOut]:
    filters = service.UnitFilters(
        station_id=station_id,
        category=category,
        service_point_id=service_point_id,
        status=status,
        above_scale=above_scale,
        q=q,
        sort=sort,
        limit=limit,
        offset=offset,
    )
    items, total = await service.list_units(db, actor, filters)
    return Page(items=items, total=total)


@router.post("/units", response_model=schemas.UnitDetail, status_code=201)
async def create_unit(
    body: schemas.UnitCreate, db: AsyncSession = Depends(get_db), actor: Principal = Depends(get_principal)
) -> schemas.UnitDetail:
    return await service.create_unit(db, actor, body)


@router.get("/units/{unit_id}", response_model=schemas.UnitDetail)
async def get_unit(
    unit_id: IdPath, db: AsyncSession = Depends(get_db), actor: Principal = Depends(get_principal)
) -> schemas.UnitDetail:
    return await service.get_unit(db, actor, unit_id)


@router.patch("/units/{unit_id}", response_model=schemas.UnitDetail)
async def update_unit(
    unit_id: IdPath,
    body: schemas.UnitUpdate,
    db: AsyncSession = Depends(get_db),
    actor: Principal = Depends(get_principal),
) -> schemas.UnitDetail:
    return await service.update_unit(db, actor, unit_id, body)


@router.put("/units/{unit_id}/liaison", response_model=schemas.UnitDetail)
async def assign_liaison(
    unit_id: IdPath,
    body: schemas.LiaisonAssign,
    db: AsyncSession = Depends(get_db),
    actor: Principal = Depends(get_principal),
) -> schemas.UnitDetail:
    return await service.assign_liaison(db, actor, unit_id, body)


@router.post("/units/{unit_id}/contacts", response_model=schemas.ContactOut, status_code=201)
async def add_contact(
    unit_id: IdPath,
    body: schemas.ContactCreate,
    db: AsyncSession = Depends(get_db),
    actor: Principal = Depends(get_principal),
) -> schemas.ContactOut:
    return await service.add_contact(db, actor, unit_id, body)


@router.post("/units/{unit_id}/contacts/{contact_id}/reveal", response_model=schemas.RevealedContact)
async def reveal_contact(
    unit_id: IdPath,
    contact_id: IdPath,
    db: AsyncSession = Depends(get_db),
    actor: Principal = Depends(get_principal),
) -> schemas.RevealedContact:
    """Unmasked phone number; allowed to officers only and written to the audit log."""
    return await service.reveal_contact(db, actor, unit_id, contact_id)
