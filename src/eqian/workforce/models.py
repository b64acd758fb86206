"""Workforce (员工服务): persons, their employments at units, and residence registration.

A person is one row per resident ID number: a worker who leaves one unit and joins another keeps
the same person row and gains a second employment. The ID number is stored in full (the database
is the system of record) and leaves the service only masked, except through the audited reveal.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import CheckConstraint, Date, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from eqian.core.db import Base, UTCDateTime, utcnow

RESIDENCE_STATUSES = ("unregistered", "registered", "permit_issued")


class Person(Base):
    __tablename__ = "workforce_persons"

    id: Mapped[int] = mapped_column(primary_key=True)
    id_number: Mapped[str] = mapped_column(String(18), unique=True)
    name: Mapped[str] = mapped_column(String(64))
    phone: Mapped[str] = mapped_column(String(11), default="")
    birth_date: Mapped[dt.date] = mapped_column(Date)  # derived from the ID number
    home_region: Mapped[str] = mapped_column(String(6))  # the ID number's 6-digit region code
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Employment(Base):
    """One stay of a person at a unit; ``left_on`` is null while they still work there."""

    __tablename__ = "workforce_employments"
    __table_args__ = (
        CheckConstraint("left_on IS NULL OR left_on >= hired_on", name="left_after_hired"),
        # Compliance and the unit page read a unit's hires by date.
        Index("ix_workforce_employments_unit_id_hired_on", "unit_id", "hired_on"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("workforce_persons.id"), index=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    hired_on: Mapped[dt.date] = mapped_column(Date)
    left_on: Mapped[dt.date | None] = mapped_column(Date, index=True)
    dormitory: Mapped[str] = mapped_column(String(200), default="")
    position: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Residence(Base):
    """Residence registration (居住登记) and permit (居住证) of a person; one row per person."""

    __tablename__ = "workforce_residences"
    __table_args__ = (
        CheckConstraint("status IN ('unregistered', 'registered', 'permit_issued')", name="status"),
    )

    person_id: Mapped[int] = mapped_column(ForeignKey("workforce_persons.id"), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), default="unregistered")
    registered_on: Mapped[dt.date | None] = mapped_column(Date)
    permit_no: Mapped[str | None] = mapped_column(String(32))
    permit_expires_on: Mapped[dt.date | None] = mapped_column(Date, index=True)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Reminder(Base):
    """A reminder already sent: the job emits one per (person, reason, occasion) and never again.

    The occasion (``ref``) is the employment id for a registration deadline and the expiry date
    for a permit, so a person hired again, or a renewed permit, is reminded afresh.
    """

    __tablename__ = "workforce_reminders"
    __table_args__ = (UniqueConstraint("person_id", "reason", "ref"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("workforce_persons.id"))
    reason: Mapped[str] = mapped_column(String(32))
    ref: Mapped[str] = mapped_column(String(32))
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    due_on: Mapped[dt.date] = mapped_column(Date)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
