"""API shapes of eco-policing. The contract between the service, the JSON API and the pages."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import Field

from eqian.core.schemas import InputModel, OutputModel

BalanceStatus = Literal["green", "amber", "red", "no_data"]
AlertKind = Literal[
    "unaccounted_ash",  # expected − accounted above tolerance for a month
    "manifest_unconfirmed",  # not confirmed by the facility within the configured hours
    "weight_shortfall",  # received below shipped beyond tolerance
    "facility_over_licence",  # a facility received more in a year than its licensed capacity
    "shipping_without_production",  # shipments with no production reported in the lookback window
    "production_without_shipments",  # production but no shipment for too long
]
EcoKind = Literal["fishing", "dumping", "sewage", "burning", "other"]
PatrolKind = Literal["patrol", "persuasion", "rescue"]


# --- registry -----------------------------------------------------------------------------------


class ProcessIn(InputModel):
    name: str = Field(min_length=1, max_length=64)
    coefficient_kg_per_t: float = Field(gt=0, description="kg ash per t aluminium, range in config.toml")


class ProcessUpdate(InputModel):
    """PATCH body of a process; only the fields given change."""

    name: str | None = Field(default=None, min_length=1, max_length=64)
    coefficient_kg_per_t: float | None = Field(default=None, gt=0)
    active: bool | None = None


class ProcessOut(OutputModel):
    id: int
    unit_id: int
    name: str
    coefficient_kg_per_t: float
    active: bool


class SmelterOut(OutputModel):
    unit_id: int
    name: str
    station_id: int
    station_name: str
    joint_zone_id: int | None
    lat: float | None
    lng: float | None
    processes: list[ProcessOut]


class FacilityIn(InputModel):
    name: str = Field(min_length=2, max_length=100)
    licence_no: str = Field(min_length=2, max_length=64)
    address: str = Field(default="", max_length=200)
    in_district: bool = True
    licensed_capacity_t_per_year: float = Field(gt=0)
    lat: float | None = Field(default=None, ge=-90, le=90)
    lng: float | None = Field(default=None, ge=-180, le=180)


class FacilityOut(OutputModel):
    id: int
    name: str
    licence_no: str
    address: str
    in_district: bool
    licensed_capacity_t_per_year: float
    lat: float | None
    lng: float | None


class CarrierIn(InputModel):
    name: str = Field(min_length=2, max_length=100)
    licence_no: str = Field(min_length=2, max_length=64)


class CarrierOut(OutputModel):
    id: int
    name: str
    licence_no: str


# --- ledger (append-only; a correction names the entry it supersedes) -----------------------------


class ProductionIn(InputModel):
    process_id: int
    produced_on: dt.date
    aluminium_t: float = Field(ge=0, le=100_000)
    note: str = Field(default="", max_length=200)
    supersedes_id: int | None = None


class StockCountIn(InputModel):
    counted_at: dt.datetime
    ash_t: float = Field(ge=0, le=1_000_000)
    note: str = Field(default="", max_length=200)
    supersedes_id: int | None = None


class ManifestIn(InputModel):
    manifest_no: str = Field(min_length=4, max_length=32, pattern=r"^[A-Za-z0-9\-]+$")
    shipped_at: dt.datetime
    shipped_t: float = Field(gt=0, le=1_000)
    carrier_id: int
    vehicle_plate: str = Field(min_length=5, max_length=16)
    facility_id: int
    note: str = Field(default="", max_length=200)
    supersedes_id: int | None = None


class ReceiptIn(InputModel):
    received_at: dt.datetime
    received_t: float = Field(ge=0, le=1_000)
    note: str = Field(default="", max_length=200)
    supersedes_id: int | None = None


class LedgerEntryOut(OutputModel):
    """One row of any ledger kind, as the drill-down shows it."""

    id: int
    kind: Literal["production", "stock", "manifest", "receipt"]
    unit_id: int
    at: dt.datetime  # produced_on at 00:00 Asia/Shanghai for production
    tonnes: float  # aluminium t (production), ash t (stock, manifest shipped, receipt received)
    detail: dict[str, Any]  # process, manifest_no, carrier, vehicle, facility … by kind
    superseded_by: int | None
    supersedes_id: int | None
    entered_by: int | None
    created_at: dt.datetime


# --- balance and alerts -------------------------------------------------------------------------


class BalanceRow(OutputModel):
    """Mass balance of one smelter for one period; tonnes of ash unless named otherwise."""

    unit_id: int
    unit_name: str
    period: str  # YYYY-MM
    aluminium_t: float
    expected_t: float  # Σ production × coefficient / 1000
    shipped_t: float  # Σ received weight of confirmed manifests shipped in the period
    unconfirmed_t: float  # Σ shipped weight of manifests not (yet) confirmed — not counted as accounted
    stock_start_t: float | None
    stock_end_t: float | None
    delta_stock_t: float
    accounted_t: float  # shipped_t + delta_stock_t
    unaccounted_t: float  # expected_t − accounted_t
    tolerance_t: float
    status: BalanceStatus


class AlertOut(OutputModel):
    id: int
    unit_id: int | None
    unit_name: str | None
    facility_id: int | None
    kind: AlertKind
    severity: Literal["red", "amber"]
    period: str
    message: str
    evidence: dict[str, Any]  # the numbers and the ledger entry ids behind the alert
    status: Literal["open", "resolved"]
    created_at: dt.datetime


# --- eco incidents and patrols ------------------------------------------------------------------


class EcoIncidentIn(InputModel):
    kind: EcoKind
    occurred_at: dt.datetime
    lat: float = Field(ge=-90, le=90)
    lng: float = Field(ge=-180, le=180)
    station_id: int
    description: str = Field(min_length=2, max_length=500)


class EcoIncidentOut(OutputModel):
    id: int
    kind: EcoKind
    occurred_at: dt.datetime
    lat: float
    lng: float
    station_id: int
    zone_id: int | None
    description: str
    source: str
    status: str


class PatrolIn(InputModel):
    kind: PatrolKind
    started_at: dt.datetime
    ended_at: dt.datetime | None = None
    lat: float = Field(ge=-90, le=90)
    lng: float = Field(ge=-180, le=180)
    station_id: int
    people_count: int = Field(default=0, ge=0, le=10_000)
    officers: str = Field(default="", max_length=200)
    note: str = Field(default="", max_length=500)


class PatrolOut(OutputModel):
    id: int
    kind: PatrolKind
    started_at: dt.datetime
    ended_at: dt.datetime | None
    lat: float
    lng: float
    station_id: int
    zone_id: int | None
    people_count: int
    officers: str
    note: str


class ZoneOut(OutputModel):
    id: int
    code: str
    name: str
    partner_agency: str
    station_id: int
    polygon: list[list[float]]
    area_km2: float
