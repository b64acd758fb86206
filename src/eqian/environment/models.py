"""Aluminium-ash supervision and eco-policing: registry, append-only ledger, alerts, eco incidents.

Ledger rows are never updated or deleted: a correction is a new row whose ``supersedes_id``
names the row it replaces, and every query uses only rows that nothing supersedes.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from eqian.core.db import Base, UTCDateTime, utcnow


class SmelterProcess(Base):
    """A process line of a smelter (unit) with its ash generation coefficient (kg ash / t aluminium)."""

    __tablename__ = "env_smelter_processes"
    __table_args__ = (UniqueConstraint("unit_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    coefficient_kg_per_t: Mapped[float] = mapped_column(Float)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class DisposalFacility(Base):
    """A licensed hazardous-waste disposal facility, in or outside the district."""

    __tablename__ = "env_facilities"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    licence_no: Mapped[str] = mapped_column(String(64), unique=True)
    address: Mapped[str] = mapped_column(String(200), default="")
    in_district: Mapped[bool] = mapped_column(Boolean, default=True)
    licensed_capacity_t_per_year: Mapped[float] = mapped_column(Float)
    lat: Mapped[float | None] = mapped_column(Float)
    lng: Mapped[float | None] = mapped_column(Float)


class Carrier(Base):
    __tablename__ = "env_carriers"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    licence_no: Mapped[str] = mapped_column(String(64), unique=True)


class _LedgerColumns:
    id: Mapped[int] = mapped_column(primary_key=True)
    entered_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    note: Mapped[str] = mapped_column(String(200), default="")


class ProductionReport(_LedgerColumns, Base):
    """Tonnes of aluminium produced by one process on one day (or batch)."""

    __tablename__ = "env_production_reports"
    __table_args__ = (CheckConstraint("aluminium_t >= 0", name="aluminium_t"),)

    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    process_id: Mapped[int] = mapped_column(ForeignKey("env_smelter_processes.id"))
    produced_on: Mapped[dt.date] = mapped_column(index=True)
    aluminium_t: Mapped[float] = mapped_column(Float)
    supersedes_id: Mapped[int | None] = mapped_column(ForeignKey("env_production_reports.id"), unique=True)


class StockCount(_LedgerColumns, Base):
    """Ash on hand at the smelter when counted."""

    __tablename__ = "env_stock_counts"
    __table_args__ = (CheckConstraint("ash_t >= 0", name="ash_t"),)

    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    counted_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)
    ash_t: Mapped[float] = mapped_column(Float)
    supersedes_id: Mapped[int | None] = mapped_column(ForeignKey("env_stock_counts.id"), unique=True)


class Manifest(_LedgerColumns, Base):
    """A transfer manifest (联单): ash leaving the smelter for a licensed facility."""

    __tablename__ = "env_manifests"
    __table_args__ = (CheckConstraint("shipped_t > 0", name="shipped_t"),)

    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    manifest_no: Mapped[str] = mapped_column(String(32), index=True)
    shipped_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)
    shipped_t: Mapped[float] = mapped_column(Float)
    carrier_id: Mapped[int] = mapped_column(ForeignKey("env_carriers.id"))
    vehicle_plate: Mapped[str] = mapped_column(String(16))
    facility_id: Mapped[int] = mapped_column(ForeignKey("env_facilities.id"), index=True)
    supersedes_id: Mapped[int | None] = mapped_column(ForeignKey("env_manifests.id"), unique=True)


class ManifestReceipt(_LedgerColumns, Base):
    """The receiving facility's confirmation of a manifest, with the weight it received."""

    __tablename__ = "env_manifest_receipts"
    __table_args__ = (
        CheckConstraint("received_t >= 0", name="received_t"),
        # Receipts join manifests on (unit_id, manifest_no) in every balance and check.
        Index("ix_env_manifest_receipts_unit_manifest", "unit_id", "manifest_no"),
    )

    manifest_no: Mapped[str] = mapped_column(String(32), index=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    received_t: Mapped[float] = mapped_column(Float)
    supersedes_id: Mapped[int | None] = mapped_column(ForeignKey("env_manifest_receipts.id"), unique=True)


class EnvAlert(Base):
    """One finding of the checks. ``fingerprint`` makes re-running a check idempotent."""

    __tablename__ = "env_alerts"

    id: Mapped[int] = mapped_column(primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(128), unique=True)
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"), index=True)
    facility_id: Mapped[int | None] = mapped_column(ForeignKey("env_facilities.id"), index=True)
    kind: Mapped[str] = mapped_column(String(40), index=True)
    severity: Mapped[str] = mapped_column(String(8))  # red | amber
    period: Mapped[str] = mapped_column(String(16), default="")
    message: Mapped[str] = mapped_column(String(300))
    evidence: Mapped[dict[str, object]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="open", index=True)  # open | resolved
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    resolved_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class EcoIncident(Base):
    """An eco incident: illegal fishing, dumping, sewage, burning … with where it happened."""

    __tablename__ = "env_eco_incidents"
    __table_args__ = (
        CheckConstraint("kind IN ('fishing', 'dumping', 'sewage', 'burning', 'other')", name="kind"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), index=True)
    occurred_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)
    lat: Mapped[float] = mapped_column(Float)
    lng: Mapped[float] = mapped_column(Float)
    station_id: Mapped[int] = mapped_column(ForeignKey("stations.id"), index=True)
    zone_id: Mapped[int | None] = mapped_column(ForeignKey("joint_zones.id"), index=True)
    description: Mapped[str] = mapped_column(String(500))
    source: Mapped[str] = mapped_column(String(16), default="direct")  # direct | incident
    status: Mapped[str] = mapped_column(String(16), default="open")
    reported_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class EcoPatrol(Base):
    """A patrol record of the joint station: patrols, persuasion of wild swimmers, rescues."""

    __tablename__ = "env_eco_patrols"
    __table_args__ = (CheckConstraint("kind IN ('patrol', 'persuasion', 'rescue')", name="kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    lat: Mapped[float] = mapped_column(Float)
    lng: Mapped[float] = mapped_column(Float)
    station_id: Mapped[int] = mapped_column(ForeignKey("stations.id"), index=True)
    zone_id: Mapped[int | None] = mapped_column(ForeignKey("joint_zones.id"), index=True)
    people_count: Mapped[int] = mapped_column(Integer, default=0)
    officers: Mapped[str] = mapped_column(String(200), default="")
    note: Mapped[str] = mapped_column(String(500), default="")
    recorded_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
