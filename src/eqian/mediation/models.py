"""Mediation (矛盾纠纷调解): teams and their members with specialties, cases, parties, sessions.

A team is the anchor of the mediator's scope (``users.team_id``). A team with ``unit_id`` is a
unit's own advisors (mediation inside the enterprise). Money is stored in fen (1/100 yuan) as
integers, so SQLite and PostgreSQL add it up exactly; the API speaks yuan.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, String, Text, true
from sqlalchemy.orm import Mapped, mapped_column

from eqian.core.db import Base, UTCDateTime, utcnow


class MediationTeam(Base):
    __tablename__ = "mediation_teams"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(32))  # volunteer | veterans | lawyers | community | unit
    station_id: Mapped[int | None] = mapped_column(ForeignKey("stations.id"), index=True)
    # Set for a unit's own advisors: the cases they handle are mediated inside the enterprise.
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"), index=True, default=None)
    # Dispute types the team takes, comma-separated codes ("" = any).
    specialties: Mapped[str] = mapped_column(String(200), default="", server_default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())


class MediationMember(Base):
    __tablename__ = "mediation_members"

    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("mediation_teams.id"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    specialties: Mapped[str] = mapped_column(String(200), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class MediationCase(Base):
    __tablename__ = "mediation_cases"
    __table_args__ = (
        Index("ix_mediation_cases_team_status", "team_id", "status"),
        Index("ix_mediation_cases_station_opened", "station_id", "opened_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # The incident it came from; the incident's own mediation_case_id is the back-link.
    incident_id: Mapped[int | None] = mapped_column(
        ForeignKey("incidents.id", ondelete="SET NULL"), index=True
    )
    source: Mapped[str] = mapped_column(String(16))  # incident | service_point | unit | walk_in
    station_id: Mapped[int] = mapped_column(ForeignKey("stations.id"))
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"), index=True)
    service_point_id: Mapped[int | None] = mapped_column(ForeignKey("service_points.id"), index=True)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("mediation_teams.id"))
    member_id: Mapped[int | None] = mapped_column(ForeignKey("mediation_members.id"), index=True)
    dispute_type: Mapped[str] = mapped_column(String(32), index=True)
    summary: Mapped[str] = mapped_column(String(1000))
    amount_in_dispute_fen: Mapped[int | None] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16), default="open")  # open | in_progress | closed
    outcome: Mapped[str | None] = mapped_column(String(16))  # agreement | failed | referred
    referred_to: Mapped[str | None] = mapped_column(String(32))  # court | labour_arbitration | other
    agreement_text: Mapped[str] = mapped_column(Text, default="")
    agreement_amount_fen: Mapped[int | None] = mapped_column(BigInteger)
    payment_schedule: Mapped[str] = mapped_column(String(500), default="")
    amount_recovered_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    outcome_note: Mapped[str] = mapped_column(String(1000), default="")
    opened_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    opened_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), index=True)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class MediationParty(Base):
    __tablename__ = "mediation_parties"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("mediation_cases.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(16))  # applicant | respondent | other
    id_number: Mapped[str | None] = mapped_column(String(18))
    phone: Mapped[str | None] = mapped_column(String(20))


class MediationSession(Base):
    __tablename__ = "mediation_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("mediation_cases.id", ondelete="CASCADE"), index=True)
    held_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    place: Mapped[str] = mapped_column(String(200), default="")
    note: Mapped[str] = mapped_column(String(2000))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
