"""Inspections against per-category checklists, and the hazards their failed items become.

A hazard moves open → fix_submitted → verified, or back to open when an officer rejects the fix;
every step is a row of ``HazardEvent`` (the hazard's timeline) as well as an audit row.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from eqian.core.db import Base, UTCDateTime, utcnow


class ChecklistItem(Base):
    """One line of a category's checklist; ``category_code`` is a unit category code or ``generic``."""

    __tablename__ = "hz_checklist_items"
    __table_args__ = (UniqueConstraint("category_code", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    category_code: Mapped[str] = mapped_column(String(32), index=True)
    code: Mapped[str] = mapped_column(String(32))
    text: Mapped[str] = mapped_column(String(200))
    severity: Mapped[str] = mapped_column(String(16))  # default severity of a failure
    sort_order: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Inspection(Base):
    __tablename__ = "hz_inspections"

    id: Mapped[int] = mapped_column(primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # inspection | self_inspection
    inspector_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    inspected_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)
    note: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class InspectionResult(Base):
    __tablename__ = "hz_inspection_results"
    __table_args__ = (UniqueConstraint("inspection_id", "item_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    inspection_id: Mapped[int] = mapped_column(ForeignKey("hz_inspections.id", ondelete="CASCADE"))
    item_id: Mapped[int] = mapped_column(ForeignKey("hz_checklist_items.id"))
    result: Mapped[str] = mapped_column(String(8))  # pass | fail | na
    note: Mapped[str] = mapped_column(String(500), default="")
    photo: Mapped[str | None] = mapped_column(String(64))  # stored file name under uploads/hazards


class Hazard(Base):
    __tablename__ = "hz_hazards"
    __table_args__ = (
        Index("ix_hz_hazards_status_deadline", "status", "deadline"),
        # The hazards never verified, with what the monthly "overdue and still open" count reads
        # (hazards.facts): that set only grows, and the count runs for the index and the cockpit.
        Index(
            "ix_hz_hazards_open",
            "deadline",
            "unit_id",
            "found_at",
            postgresql_where=text("verified_at IS NULL"),
            sqlite_where=text("verified_at IS NULL"),
        ),
        # By finding and by verification, with what the monthly facts count (found; rectified and
        # how long it took; verified after the month although overdue at its end), so a month's
        # hazards are read from the index alone (migration 0010: a city's 50,000 a month, the
        # hazards' facts 0.27 -> 0.19 s).
        Index("ix_hz_hazards_found_at", "found_at", "unit_id"),
        Index("ix_hz_hazards_verified_at", "verified_at", "unit_id", "found_at", "deadline"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    inspection_id: Mapped[int | None] = mapped_column(ForeignKey("hz_inspections.id"), index=True)
    item_id: Mapped[int | None] = mapped_column(ForeignKey("hz_checklist_items.id"))
    description: Mapped[str] = mapped_column(String(500))
    severity: Mapped[str] = mapped_column(String(16))  # low | medium | high | critical
    status: Mapped[str] = mapped_column(String(16), default="open")  # open | fix_submitted | verified
    found_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    deadline: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    verified_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    overdue_since: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    escalation_level: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class HazardEvent(Base):
    """The hazard's timeline: found, fix_submitted, verified, rejected, escalated."""

    __tablename__ = "hz_hazard_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    hazard_id: Mapped[int] = mapped_column(ForeignKey("hz_hazards.id", ondelete="CASCADE"), index=True)
    action: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    note: Mapped[str] = mapped_column(String(500), default="")
    photo: Mapped[str | None] = mapped_column(String(64))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
