"""Tables of incidents (警情): the incident with its suggested and final triage, its timeline, the
officers' overrides of the classifier, and the routing policy.

An incident moves reported → triaged → assigned → in_progress → resolved → closed (a resolved or
closed one can be reopened to in_progress); each step is a row of ``IncidentEvent`` and an audit row.
``mediation_case_id`` is a plain indexed back-link; the foreign key is the case's ``incident_id`` (one
direction only: a cycle of foreign keys would need deferred constraints).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import (
    JSON,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from eqian.core import idempotency  # noqa: F401 - registers idempotency_keys (used by intake) with the metadata
from eqian.core.db import Base, UTCDateTime, utcnow


class Incident(Base):
    __tablename__ = "incidents"
    __table_args__ = (
        Index("ix_incidents_station_id_status", "station_id", "status"),
        Index("ix_incidents_status_due_at", "status", "due_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # The 110 system's incident number, or "h:" + a hash of time, phone and text when it has none:
    # what makes a repeated import create nothing twice.
    source_key: Mapped[str] = mapped_column(String(64), unique=True)
    source: Mapped[str] = mapped_column(String(16), default="api")  # api | import | demo
    reported_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)
    station_id: Mapped[int] = mapped_column(ForeignKey("stations.id"))
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"), index=True)
    address: Mapped[str] = mapped_column(String(200), default="")
    lat: Mapped[float | None] = mapped_column(Float)
    lng: Mapped[float | None] = mapped_column(Float)
    description: Mapped[str] = mapped_column(String(2000))
    caller_phone: Mapped[str | None] = mapped_column(String(20))  # stored whole, masked on the way out
    # classification (the classifier's suggestion, then whatever the officer decided)
    category: Mapped[str] = mapped_column(String(32), index=True)
    police: Mapped[bool] = mapped_column(Boolean)
    confidence: Mapped[float] = mapped_column(Float, default=0.0)
    evidence: Mapped[list[str]] = mapped_column(JSON, default=list)
    classifier_version: Mapped[str] = mapped_column(String(32), default="")
    category_source: Mapped[str] = mapped_column(
        String(16), default="classifier"
    )  # classifier|import|officer
    severity: Mapped[str] = mapped_column(String(16), default="medium")  # low | medium | high | critical
    # linking to a unit: how and why (shown to the officer, correctable)
    link_method: Mapped[str] = mapped_column(
        String(16), default="none"
    )  # ref|name|address|nearest|manual|none
    link_reason: Mapped[str] = mapped_column(String(200), default="")
    # routing
    route: Mapped[str] = mapped_column(String(16))  # dispatch | self_governance | mediation
    sla_hours: Mapped[int] = mapped_column(Integer)
    due_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    overdue_since: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(16), default="reported")
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    mediation_case_id: Mapped[int | None] = mapped_column(Integer, index=True)
    fraud_loss_yuan: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    fraud_recovered_yuan: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    triaged_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    assigned_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    resolved_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    reopen_count: Mapped[int] = mapped_column(Integer, default=0)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class IncidentEvent(Base):
    """The incident's timeline: reported, triaged, assigned, started, resolved, closed, reopened,
    relinked, overdue."""

    __tablename__ = "incident_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    action: Mapped[str] = mapped_column(String(16))
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str | None] = mapped_column(String(16))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    note: Mapped[str] = mapped_column(String(500), default="")
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class IncidentOverride(Base):
    """An officer corrected the classifier: kept so the lexicon can learn (``suggest-rules``)."""

    __tablename__ = "incident_overrides"

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    description: Mapped[str] = mapped_column(String(2000))
    from_category: Mapped[str] = mapped_column(String(32))
    to_category: Mapped[str] = mapped_column(String(32))
    from_police: Mapped[bool] = mapped_column(Boolean)
    to_police: Mapped[bool] = mapped_column(Boolean)
    classifier_version: Mapped[str] = mapped_column(String(32), default="")
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class RoutingRule(Base):
    """category × police × unit category → route and SLA; ``*`` matches anything, ``none`` (unit
    category) an incident without a unit. The most specific matching rule wins."""

    __tablename__ = "incident_routing_rules"
    __table_args__ = (UniqueConstraint("category", "police", "unit_category"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    category: Mapped[str] = mapped_column(String(32))  # incident category code or *
    police: Mapped[str] = mapped_column(String(8))  # yes | no | *
    unit_category: Mapped[str] = mapped_column(String(32))  # unit category code, none, or *
    route: Mapped[str] = mapped_column(String(16))
    sla_hours: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
