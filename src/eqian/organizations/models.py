"""Organization registry: bureau → stations → service points, unit categories, units, contacts."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, Boolean, CheckConstraint, Float, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from eqian.core.db import Base, UTCDateTime, utcnow


class Bureau(Base):
    __tablename__ = "bureaus"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(64))


class Station(Base):
    __tablename__ = "stations"

    id: Mapped[int] = mapped_column(primary_key=True)
    bureau_id: Mapped[int] = mapped_column(ForeignKey("bureaus.id"), index=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    address: Mapped[str] = mapped_column(String(200), default="")
    lat: Mapped[float | None] = mapped_column(Float)
    lng: Mapped[float | None] = mapped_column(Float)


class ServicePoint(Base):
    """A self-governance service point (自治服务点) attached to a station."""

    __tablename__ = "service_points"

    id: Mapped[int] = mapped_column(primary_key=True)
    station_id: Mapped[int] = mapped_column(ForeignKey("stations.id"), index=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    address: Mapped[str] = mapped_column(String(200), default="")
    lat: Mapped[float | None] = mapped_column(Float)
    lng: Mapped[float | None] = mapped_column(Float)


class UnitCategory(Base):
    """One of the 11 categories of "平安织里自家人"; the code is stable, the names are display text."""

    __tablename__ = "unit_categories"

    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name_zh: Mapped[str] = mapped_column(String(32), unique=True)
    name_en: Mapped[str] = mapped_column(String(64))
    sort_order: Mapped[int] = mapped_column(Integer, default=0)


class Unit(Base):
    __tablename__ = "units"
    __table_args__ = (
        CheckConstraint("status IN ('active', 'suspended', 'closed')", name="status"),
        CheckConstraint("employee_count >= 0", name="employee_count"),
        # A station officer's first page sorts the station's units by name: serve it from an index.
        Index("ix_units_station_id_name", "station_id", "name"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), index=True)
    credit_code: Mapped[str] = mapped_column(String(18), unique=True)
    category_code: Mapped[str] = mapped_column(ForeignKey("unit_categories.code"), index=True)
    station_id: Mapped[int] = mapped_column(ForeignKey("stations.id"), index=True)
    service_point_id: Mapped[int | None] = mapped_column(ForeignKey("service_points.id"), index=True)
    address: Mapped[str] = mapped_column(String(200), default="")
    lat: Mapped[float | None] = mapped_column(Float)
    lng: Mapped[float | None] = mapped_column(Float)
    employee_count: Mapped[int] = mapped_column(Integer, default=0)
    above_scale: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16), default="active", index=True)
    # Set by the service from the coordinates; a partner agency's officers see these units.
    joint_zone_id: Mapped[int | None] = mapped_column(ForeignKey("joint_zones.id"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    contacts: Mapped[list[Contact]] = relationship(
        # "raise": a list of 20,000 units must not pull every contact along; load them on purpose.
        back_populates="unit",
        cascade="all, delete-orphan",
        order_by="Contact.id",
        lazy="raise",
    )


class Contact(Base):
    """A unit's security head or safety advisor. Phones are stored whole and masked on the way out."""

    __tablename__ = "contacts"
    __table_args__ = (CheckConstraint("role IN ('security_head', 'safety_advisor')", name="role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(32))  # security_head | safety_advisor
    phone: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)

    unit: Mapped[Unit] = relationship(back_populates="contacts")


class LiaisonAssignment(Base):
    """Which liaison officer (企业警长) looks after a unit: at most one per unit.

    A table of its own, not a column on units, so that units and users do not reference each other.
    """

    __tablename__ = "liaison_assignments"

    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id", ondelete="CASCADE"), primary_key=True)
    officer_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    assigned_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class JointZone(Base):
    """A cross-agency joint zone (e.g. the 9.2 km² core area around the 乔溇 joint station).

    Officers of the partner agency get accounts scoped to one zone. The boundary is a polygon of
    (lat, lng) pairs; membership of units is derived from their coordinates.
    """

    __tablename__ = "joint_zones"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(64))
    partner_agency: Mapped[str] = mapped_column(String(100))
    station_id: Mapped[int] = mapped_column(ForeignKey("stations.id"), index=True)
    polygon: Mapped[list[list[float]]] = mapped_column(JSON)
