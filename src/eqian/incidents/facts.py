"""Monthly facts of incidents (see ``eqian.core.facts``), attributed to the month of ``reported_at``.

One grouped query over ``[start, end)``: per station, unit and category, the counts and sums below,
as a block of rows per category. A unit-less incident (a street call) has ``unit_id`` None.

- ``incidents.total``, ``incidents.police``, ``incidents.non_police``, ``incidents.cat.<code>``
- ``incidents.severe`` (severity high or critical)
- ``incidents.self_governed`` (routed to the unit), ``incidents.self_governed_resolved``
- ``incidents.overdue`` (SLA breached: resolved after ``due_at``, or still open past it)
- ``incidents.fraud_loss_yuan``, ``incidents.fraud_recovered_yuan``

Resolution and lateness are judged as things stood at the end of the month (or now, for the month
under way), as the hazards' facts are: computed again next year, a month's figures are the same,
and the backtest's index of a month knows nothing that happened after it.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Integer, and_, case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from eqian.core.facts import Fact, FactRows, fetch, judged_at, merged
from eqian.incidents.models import Incident

METRICS = (
    "incidents.total",
    "incidents.police",
    "incidents.non_police",
    "incidents.severe",
    "incidents.self_governed",
    "incidents.self_governed_resolved",
    "incidents.overdue",
    "incidents.fraud_loss_yuan",
    "incidents.fraud_recovered_yuan",
)


def _count(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return func.sum(case((condition, 1), else_=0)).cast(Integer)


async def monthly_facts(
    session: AsyncSession, start: dt.datetime, end: dt.datetime, *, now: dt.datetime | None = None
) -> list[Fact]:
    return merged(await monthly_fact_rows(session, start, end, now=now))


async def monthly_fact_rows(
    session: AsyncSession, start: dt.datetime, end: dt.datetime, *, now: dt.datetime | None = None
) -> list[FactRows]:
    judged = judged_at(end, now)
    # Reopening clears resolved_at, so "resolved by then" is a resolved_at before then.
    resolved = and_(Incident.resolved_at.is_not(None), Incident.resolved_at < judged)
    overdue = and_(
        Incident.due_at < judged,
        or_(Incident.resolved_at.is_(None), Incident.resolved_at > Incident.due_at),
    )
    self_gov = Incident.route == "self_governance"
    police = _count(Incident.police.is_(True))
    query = (
        select(
            Incident.category,
            Incident.station_id,
            Incident.unit_id,
            func.count(),
            police,
            func.count() - police,
            func.count(),
            _count(Incident.severity.in_(("high", "critical"))),
            _count(self_gov),
            _count(and_(self_gov, resolved)),
            _count(overdue),
            func.coalesce(func.sum(Incident.fraud_loss_yuan), 0),
            func.coalesce(func.sum(Incident.fraud_recovered_yuan), 0),
        )
        .where(Incident.reported_at >= start, Incident.reported_at < end)
        .group_by(Incident.category, Incident.station_id, Incident.unit_id)
    )
    by_category: dict[str, list[Sequence[Any]]] = defaultdict(list)
    for row in await fetch(session, query):
        by_category[row[0]].append(row[1:])
    # A block per category, its count repeated as that block's incidents.cat.<code>.
    return [
        FactRows((*METRICS[:3], f"incidents.cat.{category}", *METRICS[3:]), rows)
        for category, rows in sorted(by_category.items())
    ]
