"""Police–enterprise activities (警企恳谈): roundtables, industry meetings, joint patrols, trainings,
the units invited to them, their answers and attendance, and the issues raised there."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from eqian.core.db import Base, UTCDateTime, utcnow

KINDS = ("roundtable", "industry_meeting", "joint_patrol", "safety_training", "antifraud_training")
STATUSES = ("planned", "held", "cancelled")
RESPONSES = ("invited", "accepted", "declined")


class Activity(Base):
    """One activity; ``station_id`` is empty for a bureau-wide one.

    A weekly roundtable carries the Monday of its week (Asia/Shanghai) in ``week_start``, so that a
    station never gets two roundtables in one week (the unique constraint; other kinds leave it
    empty, and NULLs never collide).
    """

    __tablename__ = "activities"
    __table_args__ = (
        CheckConstraint(f"kind IN {KINDS}", name="kind"),
        CheckConstraint(f"status IN {STATUSES}", name="status"),
        CheckConstraint("ends_at >= starts_at", name="ends_after_start"),
        UniqueConstraint("station_id", "week_start", name="uq_activities_station_week"),
        Index("ix_activities_starts_at", "starts_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    station_id: Mapped[int | None] = mapped_column(ForeignKey("stations.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    title: Mapped[str] = mapped_column(String(200))
    category_code: Mapped[str | None] = mapped_column(ForeignKey("unit_categories.code"))
    starts_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    ends_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    location: Mapped[str] = mapped_column(String(200), default="")
    organiser_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    status: Mapped[str] = mapped_column(String(16), default="planned")
    minutes: Mapped[str] = mapped_column(Text, default="")
    week_start: Mapped[dt.date | None] = mapped_column(Date)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class ActivityInvitation(Base):
    """A unit invited to an activity: its answer, and the attendance the organiser recorded."""

    __tablename__ = "activity_invitations"
    __table_args__ = (
        UniqueConstraint("activity_id", "unit_id"),
        CheckConstraint(f"response IN {RESPONSES}", name="response"),
        CheckConstraint("attendee_count >= 0", name="attendee_count"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    activity_id: Mapped[int] = mapped_column(ForeignKey("activities.id", ondelete="CASCADE"), index=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    response: Mapped[str] = mapped_column(String(16), default="invited")
    responded_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    attended: Mapped[bool | None] = mapped_column(Boolean)
    attendee_count: Mapped[int] = mapped_column(Integer, default=0)
    attendee_names: Mapped[str] = mapped_column(String(500), default="")
    recorded_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class ActivityIssue(Base):
    """An issue a unit raised at an activity. It becomes an enterprise request (涉企诉求) once the
    requests domain exists; until then it is kept here."""

    __tablename__ = "activity_issues"

    id: Mapped[int] = mapped_column(primary_key=True)
    activity_id: Mapped[int] = mapped_column(ForeignKey("activities.id", ondelete="CASCADE"), index=True)
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"), index=True)
    text: Mapped[str] = mapped_column(Text)
    raised_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
