"""Tables of cockpit: the monthly rollups it answers from, and which months need recomputing.

``cockpit_rollups`` holds, per local month (Asia/Shanghai), station and unit category, the sum of
every monthly fact (``eqian.core.facts``) and the count of safety-index grades. ``station_id`` 0
means a fact without a station, -1 the sum over every station (the bureau-wide view reads those);
``category`` "" a fact without a unit (a street incident). The cockpit sums these rows; it never
scans the domains' raw history per request. On SQLite the table is WITHOUT ROWID, so the primary
key is the table and a month's rows are read in one range with their values.

``cockpit_months`` records when each month was computed and whether an event has marked it dirty
since (``dirty_since``), so a refresh that started before a newer event leaves the month dirty.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, Float, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from eqian.core.db import Base, UTCDateTime

__all__ = ["Base", "CockpitMonth", "Rollup"]


class Rollup(Base):
    __tablename__ = "cockpit_rollups"
    __table_args__ = ({"sqlite_with_rowid": False},)

    month: Mapped[str] = mapped_column(String(7), primary_key=True)
    station_id: Mapped[int] = mapped_column(Integer, primary_key=True)  # 0: no station, -1: all
    category: Mapped[str] = mapped_column(String(32), primary_key=True)  # "": not linked to a unit
    metric: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[float] = mapped_column(Float, default=0.0)


class CockpitMonth(Base):
    __tablename__ = "cockpit_months"

    month: Mapped[str] = mapped_column(String(7), primary_key=True)
    dirty: Mapped[bool] = mapped_column(Boolean, default=True, index=True)
    dirty_since: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    computed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    rows: Mapped[int] = mapped_column(Integer, default=0)
