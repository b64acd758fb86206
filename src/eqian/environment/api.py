"""JSON API of eco-policing under /api/v1/environment: parse, authorise, hand to the service.

Ledger rows are append-only: there is no PUT, PATCH or DELETE on them; a correction is a POST whose
``supersedes_id`` names the entry it replaces.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import Depends, Path, Query
from sqlalchemy.ext.asyncio import AsyncSession

from eqian.core.permissions import Principal
from eqian.core.schemas import Page
from eqian.environment import schemas, service
from eqian.web.deps import get_db, get_principal
from eqian.web.routing import Router

router = Router(prefix="/api/v1/environment", tags=["environment"])

PERIOD_PATTERN = r"^\d{4}-(0[1-9]|1[0-2])$"
Limit = Annotated[int, Query(ge=1, le=500)]
Offset = Annotated[int, Query(ge=0, le=service.MAX_ID)]
OptionalId = Annotated[int | None, Query(ge=1, le=service.MAX_ID)]
Period = Annotated[str, Query(pattern=PERIOD_PATTERN, description="YYYY-MM (Asia/Shanghai)")]
ManifestNo = Annotated[str, Path(min_length=4, max_length=32, pattern=r"^[A-Za-z0-9\-]+$")]
Db = Annotated[AsyncSession, Depends(get_db)]
Actor = Annotated[Principal, Depends(get_principal)]


# --- registry ------------------------------------------------------------------------------------


@router.get("/smelters", response_model=Page[schemas.SmelterOut])
async def list_smelters(
    db: Db,
    actor: Actor,
    station_id: OptionalId = None,
    zone_id: OptionalId = None,
    q: Annotated[str | None, Query(max_length=100)] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Page[schemas.SmelterOut]:
    """Smelters (units with at least one process line) in the caller's jurisdiction."""
    filters = service.SmelterFilters(station_id=station_id, zone_id=zone_id, q=q, limit=limit, offset=offset)
    items, total = await service.list_smelters(db, actor, filters)
    return Page(items=items, total=total)


@router.get("/smelters/{unit_id}", response_model=schemas.SmelterOut)
async def get_smelter(unit_id: int, db: Db, actor: Actor) -> schemas.SmelterOut:
    return await service.get_smelter(db, actor, unit_id)


@router.post("/units/{unit_id}/processes", response_model=schemas.ProcessOut, status_code=201)
async def create_process(unit_id: int, body: schemas.ProcessIn, db: Db, actor: Actor) -> schemas.ProcessOut:
    """Add a process line with its ash coefficient (bureau, station officer); makes the unit a smelter."""
    return await service.create_process(db, actor, unit_id, body)


@router.patch("/units/{unit_id}/processes/{process_id}", response_model=schemas.ProcessOut)
async def update_process(
    unit_id: int, process_id: int, body: schemas.ProcessUpdate, db: Db, actor: Actor
) -> schemas.ProcessOut:
    return await service.update_process(db, actor, unit_id, process_id, body)


@router.get("/facilities", response_model=Page[schemas.FacilityOut])
async def list_facilities(
    db: Db, actor: Actor, limit: Limit = 50, offset: Offset = 0
) -> Page[schemas.FacilityOut]:
    items, total = await service.list_facilities(db, actor, limit=limit, offset=offset)
    return Page(items=items, total=total)


@router.get("/facilities/{facility_id}", response_model=schemas.FacilityOut)
async def get_facility(facility_id: int, db: Db, actor: Actor) -> schemas.FacilityOut:
    return await service.get_facility(db, actor, facility_id)


@router.post("/facilities", response_model=schemas.FacilityOut, status_code=201)
async def create_facility(body: schemas.FacilityIn, db: Db, actor: Actor) -> schemas.FacilityOut:
    return await service.create_facility(db, actor, body)


@router.get("/carriers", response_model=Page[schemas.CarrierOut])
async def list_carriers(
    db: Db, actor: Actor, limit: Limit = 50, offset: Offset = 0
) -> Page[schemas.CarrierOut]:
    items, total = await service.list_carriers(db, actor, limit=limit, offset=offset)
    return Page(items=items, total=total)


@router.get("/carriers/{carrier_id}", response_model=schemas.CarrierOut)
async def get_carrier(carrier_id: int, db: Db, actor: Actor) -> schemas.CarrierOut:
    return await service.get_carrier(db, actor, carrier_id)


@router.post("/carriers", response_model=schemas.CarrierOut, status_code=201)
async def create_carrier(body: schemas.CarrierIn, db: Db, actor: Actor) -> schemas.CarrierOut:
    return await service.create_carrier(db, actor, body)


# --- ledger --------------------------------------------------------------------------------------


@router.get("/units/{unit_id}/ledger", response_model=Page[schemas.LedgerEntryOut])
async def list_ledger(unit_id: int, period: Period, db: Db, actor: Actor) -> Page[schemas.LedgerEntryOut]:
    """Every entry of the month, corrections and the entries they replaced (``superseded_by``) included."""
    items = await service.list_ledger(db, actor, unit_id, period)
    return Page(items=items, total=len(items))


@router.post("/units/{unit_id}/production", response_model=schemas.LedgerEntryOut, status_code=201)
async def add_production(
    unit_id: int, body: schemas.ProductionIn, db: Db, actor: Actor
) -> schemas.LedgerEntryOut:
    return await service.add_production(db, actor, unit_id, body)


@router.post("/units/{unit_id}/stock-counts", response_model=schemas.LedgerEntryOut, status_code=201)
async def add_stock_count(
    unit_id: int, body: schemas.StockCountIn, db: Db, actor: Actor
) -> schemas.LedgerEntryOut:
    return await service.add_stock_count(db, actor, unit_id, body)


@router.post("/units/{unit_id}/manifests", response_model=schemas.LedgerEntryOut, status_code=201)
async def add_manifest(
    unit_id: int, body: schemas.ManifestIn, db: Db, actor: Actor
) -> schemas.LedgerEntryOut:
    return await service.add_manifest(db, actor, unit_id, body)


@router.post(
    "/units/{unit_id}/manifests/{manifest_no}/receipts",
    response_model=schemas.LedgerEntryOut,
    status_code=201,
)
async def add_receipt(
    unit_id: int, manifest_no: ManifestNo, body: schemas.ReceiptIn, db: Db, actor: Actor
) -> schemas.LedgerEntryOut:
    """The receiving facility's weighbridge confirmation (entered by officers for now)."""
    return await service.add_receipt(db, actor, unit_id, manifest_no, body)


# --- balance and alerts -------------------------------------------------------------------------


@router.get("/balance", response_model=Page[schemas.BalanceRow])
async def balance_board(
    db: Db,
    actor: Actor,
    period: Annotated[
        str | None, Query(pattern=PERIOD_PATTERN, description="YYYY-MM; default this month")
    ] = None,
    station_id: OptionalId = None,
    status: schemas.BalanceStatus | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Page[schemas.BalanceRow]:
    """Mass balance of every smelter in scope for one month, with red/amber/green status."""
    items, total = await service.balance_board(
        db,
        actor,
        period=period or service.current_period(),
        station_id=station_id,
        status=status,
        limit=limit,
        offset=offset,
    )
    return Page(items=items, total=total)


@router.get("/units/{unit_id}/balance", response_model=Page[schemas.BalanceRow])
async def balance_trend(
    unit_id: int,
    db: Db,
    actor: Actor,
    months: Annotated[int, Query(ge=1, le=36)] = 6,
    until: Annotated[
        str | None, Query(pattern=PERIOD_PATTERN, description="last month; default this one")
    ] = None,
) -> Page[schemas.BalanceRow]:
    """One smelter's balance month by month, oldest first."""
    items = await service.balance_trend(db, actor, unit_id, months, until)
    return Page(items=items, total=len(items))


@router.get("/alerts", response_model=Page[schemas.AlertOut])
async def list_alerts(
    db: Db,
    actor: Actor,
    status: Literal["open", "resolved", "all"] = "open",
    kind: schemas.AlertKind | None = None,
    unit_id: OptionalId = None,
    facility_id: OptionalId = None,
    period: Annotated[
        str | None, Query(pattern=r"^\d{4}(-(0[1-9]|1[0-2]))?$", description="YYYY-MM or YYYY")
    ] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Page[schemas.AlertOut]:
    """Alerts in scope, newest first, each with the evidence (numbers and ledger entry ids) behind it."""
    filters = service.AlertFilters(
        status=status,
        kind=kind,
        unit_id=unit_id,
        facility_id=facility_id,
        period=period,
        limit=limit,
        offset=offset,
    )
    items, total = await service.list_alerts(db, actor, filters)
    return Page(items=items, total=total)


@router.get("/alerts/{alert_id}", response_model=schemas.AlertOut)
async def get_alert(alert_id: int, db: Db, actor: Actor) -> schemas.AlertOut:
    return await service.get_alert(db, actor, alert_id)


@router.post("/checks")
async def run_checks(db: Db, actor: Actor) -> dict[str, Any]:
    """Run every check now over all smelters and facilities (bureau only); answers the check report."""
    return await service.run_all_checks(db, actor)


# --- eco incidents, patrols, zones ------------------------------------------------------------------


def _eco_filters(
    kind: str | None,
    station_id: int | None,
    zone_id: int | None,
    since: dt.datetime | None,
    until: dt.datetime | None,
    limit: int,
    offset: int,
) -> service.EcoFilters:
    return service.EcoFilters(
        kind=kind,
        station_id=station_id,
        zone_id=zone_id,
        since=since,
        until=until,
        limit=limit,
        offset=offset,
    )


@router.get("/eco-incidents", response_model=Page[schemas.EcoIncidentOut])
async def list_eco_incidents(
    db: Db,
    actor: Actor,
    kind: schemas.EcoKind | None = None,
    station_id: OptionalId = None,
    zone_id: OptionalId = None,
    since: Annotated[dt.datetime | None, Query(alias="from")] = None,
    until: Annotated[dt.datetime | None, Query(alias="to")] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Page[schemas.EcoIncidentOut]:
    """Eco incidents: the bureau sees all, a station its own, a partner officer its joint zone."""
    filters = _eco_filters(kind, station_id, zone_id, since, until, limit, offset)
    items, total = await service.list_eco_incidents(db, actor, filters)
    return Page(items=items, total=total)


@router.get("/eco-incidents/{incident_id}", response_model=schemas.EcoIncidentOut)
async def get_eco_incident(incident_id: int, db: Db, actor: Actor) -> schemas.EcoIncidentOut:
    return await service.get_eco_incident(db, actor, incident_id)


@router.post("/eco-incidents", response_model=schemas.EcoIncidentOut, status_code=201)
async def create_eco_incident(body: schemas.EcoIncidentIn, db: Db, actor: Actor) -> schemas.EcoIncidentOut:
    return await service.create_eco_incident(db, actor, body)


@router.get("/patrols", response_model=Page[schemas.PatrolOut])
async def list_patrols(
    db: Db,
    actor: Actor,
    kind: schemas.PatrolKind | None = None,
    station_id: OptionalId = None,
    zone_id: OptionalId = None,
    since: Annotated[dt.datetime | None, Query(alias="from")] = None,
    until: Annotated[dt.datetime | None, Query(alias="to")] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Page[schemas.PatrolOut]:
    filters = _eco_filters(kind, station_id, zone_id, since, until, limit, offset)
    items, total = await service.list_patrols(db, actor, filters)
    return Page(items=items, total=total)


@router.get("/patrols/{patrol_id}", response_model=schemas.PatrolOut)
async def get_patrol(patrol_id: int, db: Db, actor: Actor) -> schemas.PatrolOut:
    return await service.get_patrol(db, actor, patrol_id)


@router.post("/patrols", response_model=schemas.PatrolOut, status_code=201)
async def create_patrol(body: schemas.PatrolIn, db: Db, actor: Actor) -> schemas.PatrolOut:
    return await service.create_patrol(db, actor, body)


@router.get("/zones", response_model=Page[schemas.ZoneOut])
async def list_zones(db: Db, actor: Actor, limit: Limit = 50, offset: Offset = 0) -> Page[schemas.ZoneOut]:
    items, total = await service.list_zones(db, actor, limit=limit, offset=offset)
    return Page(items=items, total=total)


@router.get("/zones/{zone_id}", response_model=schemas.ZoneOut)
async def get_zone(zone_id: int, db: Db, actor: Actor) -> schemas.ZoneOut:
    return await service.get_zone(db, actor, zone_id)
