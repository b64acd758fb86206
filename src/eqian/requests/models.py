"""涉企诉求 / enterprise requests: what a unit asks of the police, where it is routed, the reply,
the resolution and the unit's rating; departments are a small data table."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from eqian.core.db import Base, UTCDateTime, utcnow


class RequestDepartment(Base):
    """A police department requests are routed to; ``kinds`` lists the kinds it takes (comma-separated);
    a department with a station serves that station only."""

    __tablename__ = "request_departments"
    __table_args__ = (UniqueConstraint("code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(64))
    kinds: Mapped[str] = mapped_column(String(200), default="")
    station_id: Mapped[int | None] = mapped_column(ForeignKey("stations.id"), index=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class EnterpriseRequest(Base):
    __tablename__ = "enterprise_requests"
    __table_args__ = (Index("ix_enterprise_requests_status_due", "status", "due_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    station_id: Mapped[int] = mapped_column(ForeignKey("stations.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32), index=True)
    title: Mapped[str] = mapped_column(String(120))
    body: Mapped[str] = mapped_column(Text)
    # submitted -> in_progress (replied) -> resolved
    status: Mapped[str] = mapped_column(String(16), default="submitted")
    department_id: Mapped[int | None] = mapped_column(ForeignKey("request_departments.id"), index=True)
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    submitted_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    submitted_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)
    due_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    reply: Mapped[str] = mapped_column(Text, default="")
    replied_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    resolution: Mapped[str] = mapped_column(Text, default="")
    resolved_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), index=True)
    rating: Mapped[int | None] = mapped_column(Integer)
    rating_comment: Mapped[str] = mapped_column(String(500), default="")
    rated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), index=True)
    overdue_since: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class RequestEvent(Base):
    """A request's timeline: submitted, routed, replied, resolved, rated, overdue."""

    __tablename__ = "enterprise_request_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(
        ForeignKey("enterprise_requests.id", ondelete="CASCADE"), index=True
    )
    action: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    note: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
