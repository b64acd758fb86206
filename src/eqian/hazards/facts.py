"""Monthly facts of hazards for the safety index and the cockpit (see ``eqian.core.facts``).

Read-only, one grouped query per metric family over ``[start, end)`` (UTC):
``hazards.found`` (found in the period), ``hazards.rectified`` and ``hazards.rectify_days_sum``
(verified in the period, days from finding to verification), ``hazards.overdue_open`` (still
unverified at the end of the period although their deadline had passed) and
``hazards.self_inspections`` (the unit's own inspections in the period).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ColumnElement, and_, func, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from eqian.core.facts import Fact, FactRows, expand, fetch
from eqian.hazards.models import Hazard, Inspection
from eqian.organizations.models import Unit


def _days(session: AsyncSession, start: Any, end: Any) -> ColumnElement[Any]:
    """``end − start`` in (fractional) days on either backend."""
    if session.get_bind().dialect.name == "postgresql":
        return func.extract("epoch", end - start) / 86400.0
    return func.julianday(end) - func.julianday(start)


async def monthly_facts(session: AsyncSession, start: dt.datetime, end: dt.datetime) -> list[Fact]:
    return expand(await monthly_fact_rows(session, start, end))


async def monthly_fact_rows(session: AsyncSession, start: dt.datetime, end: dt.datetime) -> list[FactRows]:
    found = await fetch(
        session,
        select(Unit.station_id, Hazard.unit_id, func.count())
        .join(Unit, Unit.id == Hazard.unit_id)
        .where(Hazard.found_at >= start, Hazard.found_at < end)
        .group_by(Unit.station_id, Hazard.unit_id),
    )
    rectified = await fetch(
        session,
        select(
            Unit.station_id,
            Hazard.unit_id,
            func.count(),
            func.sum(_days(session, Hazard.found_at, Hazard.verified_at)),
        )
        .join(Unit, Unit.id == Hazard.unit_id)
        .where(Hazard.verified_at >= start, Hazard.verified_at < end)
        .group_by(Unit.station_id, Hazard.unit_id),
    )
    # Two parts, not one OR: the hazards never verified are read from the partial index of open
    # hazards alone (ix_hz_hazards_open, every column the count needs), those verified after the
    # period from the verified_at index. With the OR the whole set was fetched from the table: a
    # bitmap heap scan of every open hazard the district has ever had, each month again.
    due = and_(Hazard.found_at < end, Hazard.deadline < end)
    late = union_all(
        select(Hazard.unit_id).where(Hazard.verified_at.is_(None), due),
        select(Hazard.unit_id).where(Hazard.verified_at >= end, due),
    ).subquery()
    overdue = await fetch(
        session,
        select(Unit.station_id, late.c.unit_id, func.count())
        .join(Unit, Unit.id == late.c.unit_id)
        .group_by(Unit.station_id, late.c.unit_id),
    )
    selfs = await fetch(
        session,
        select(Unit.station_id, Inspection.unit_id, func.count())
        .join(Unit, Unit.id == Inspection.unit_id)
        .where(
            and_(
                Inspection.kind == "self_inspection",
                Inspection.inspected_at >= start,
                Inspection.inspected_at < end,
            )
        )
        .group_by(Unit.station_id, Inspection.unit_id),
    )
    return [
        FactRows(("hazards.found",), found),
        FactRows(
            ("hazards.rectified", "hazards.rectify_days_sum"),
            [(s, u, n, round(float(days or 0), 4)) for s, u, n, days in rectified],
        ),
        FactRows(("hazards.overdue_open",), overdue),
        FactRows(("hazards.self_inspections",), selfs),
    ]
