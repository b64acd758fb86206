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

from sqlalchemy import JSON, Float, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from eqian.core.db import Base, UTCDateTime, utcnow


class SafetyIndexScore(Base):
    """One unit-month. Written 20,000 at a time (a city's month), so the table carries what that
    insert can afford (migration 0009). No foreign keys, deliberately, as ``msg_receipts`` has none:
    the rows are written only by ``compute_month`` from its own select of ``units`` in the same
    transaction, so both references hold by construction, and neither units nor stations are ever
    deleted (a unit is deregistered); on PostgreSQL the two constraints' per-row checks (each a
    ``FOR KEY SHARE`` lock on a unit or station row) were 190 of the insert's 310 ms. Two indexes
    serve every read: the key ``(unit_id, month)``, for a unit's history, and ``(month, station_id,
    score)`` for a month's lists, ranks and counts. A surrogate ``id`` (a sequence call per row and
    an index of its own) and separate ``unit_id`` and ``station_id`` indexes served nothing."""

    __tablename__ = "safety_index_scores"
    __table_args__ = (Index("ix_safety_index_scores_month_station_id_score", "month", "station_id", "score"),)

    unit_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    month: Mapped[str] = mapped_column(String(7), primary_key=True)  # YYYY-MM, Asia/Shanghai
    station_id: Mapped[int] = mapped_column(Integer)  # the unit's station when the month was computed
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
