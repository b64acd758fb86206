"""Tables of safety_index: one score row per unit and month, and one run row per month.

A month's rows are always written together by one computation, with the model version they were
computed with (``config_version``). ``deductions`` holds every deduction and bonus as figures,
``[code, points, [values of its metrics]]``, explained when read with the texts of that version,
which ``safety_index_models`` keeps as first used: a past month reads the same after the model
file has moved on. Rows written before migration 0008 hold their explanations written out (each
item an object with its reason, metrics and link) and their advice in ``advice``; since then
``advice`` is empty, the advice being derived from the deductions when read.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from eqian.core.db import Base, UTCDateTime, utcnow


class SafetyIndexScore(Base):
    __tablename__ = "safety_index_scores"
    __table_args__ = (
        UniqueConstraint("month", "unit_id"),
        Index("ix_safety_index_scores_month_station_id_score", "month", "station_id", "score"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    month: Mapped[str] = mapped_column(String(7))  # YYYY-MM, Asia/Shanghai
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id", ondelete="CASCADE"), index=True)
    station_id: Mapped[int] = mapped_column(ForeignKey("stations.id"), index=True)
    category_code: Mapped[str] = mapped_column(String(32))
    score: Mapped[float] = mapped_column(Float)
    grade: Mapped[str] = mapped_column(String(16))  # excellent | good | fair | poor
    rank_station: Mapped[int] = mapped_column(Integer)
    station_units: Mapped[int] = mapped_column(Integer)
    rank_category: Mapped[int] = mapped_column(Integer)
    category_units: Mapped[int] = mapped_column(Integer)
    change: Mapped[float | None] = mapped_column(Float)  # score − last month's score; None if new
    deductions: Mapped[list[Any]] = mapped_column(JSON)  # figures; written-out dicts before 0008
    advice: Mapped[list[str]] = mapped_column(JSON)
    config_version: Mapped[str] = mapped_column(String(32))
    computed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class SafetyIndexRun(Base):
    """Which months have an index, computed with which model version."""

    __tablename__ = "safety_index_runs"

    month: Mapped[str] = mapped_column(String(7), primary_key=True)
    config_version: Mapped[str] = mapped_column(String(32))
    units: Mapped[int] = mapped_column(Integer)
    seconds: Mapped[float] = mapped_column(Float)
    computed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class SafetyIndexModel(Base):
    """Each model version as it was first used to compute a month (``IndexModel.source``)."""

    __tablename__ = "safety_index_models"

    version: Mapped[str] = mapped_column(String(32), primary_key=True)
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
