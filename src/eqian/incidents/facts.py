"""Monthly facts of incidents (see ``eqian.core.facts``), attributed to the month of ``reported_at``.

One grouped query over ``[start, end)``: per station, unit and category, the counts and sums below;
the rest is added up here. A unit-less incident (a street call) has ``unit_id`` None.

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

from sqlalchemy import ColumnElement, Integer, and_, case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from eqian.core.facts import Fact, fetch, judged_at
from eqian.incidents.models import Incident


def _count(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return func.sum(case((condition, 1), else_=0)).cast(Integer)


async def monthly_facts(
    session: AsyncSession, start: dt.datetime, end: dt.datetime, *, now: dt.datetime | None = None
) -> list[Fact]:
    judged = judged_at(end, now)
    # Reopening clears resolved_at, so "resolved by then" is a resolved_at before then.
    resolved = and_(Incident.resolved_at.is_not(None), Incident.resolved_at < judged)
    overdue = and_(
        Incident.due_at < judged,
        or_(Incident.resolved_at.is_(None), Incident.resolved_at > Incident.due_at),
    )
    self_gov = Incident.route == "self_governance"
    query = (
        select(
            Incident.station_id,
            Incident.unit_id,
            Incident.category,
            func.count(),
            _count(Incident.police.is_(True)),
            _count(Incident.severity.in_(("high", "critical"))),
            _count(self_gov),
            _count(and_(self_gov, resolved)),
            _count(overdue),
            func.coalesce(func.sum(Incident.fraud_loss_yuan), 0),
            func.coalesce(func.sum(Incident.fraud_recovered_yuan), 0),
        )
        .where(Incident.reported_at >= start, Incident.reported_at < end)
        .group_by(Incident.station_id, Incident.unit_id, Incident.category)
    )
    sums: dict[tuple[int, int | None], dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for (
        station_id,
        unit_id,
        category,
        total,
        police,
        severe,
        sg,
        sg_done,
        late,
        loss,
        recovered,
    ) in await fetch(session, query):
        acc = sums[(station_id, unit_id)]
        acc["incidents.total"] += total
        acc["incidents.police"] += police or 0
        acc["incidents.non_police"] += total - (police or 0)
        acc[f"incidents.cat.{category}"] += total
        acc["incidents.severe"] += severe or 0
        acc["incidents.self_governed"] += sg or 0
        acc["incidents.self_governed_resolved"] += sg_done or 0
        acc["incidents.overdue"] += late or 0
        acc["incidents.fraud_loss_yuan"] += float(loss or 0)
        acc["incidents.fraud_recovered_yuan"] += float(recovered or 0)
    return [
        Fact(station_id, unit_id, metric, value)
        for (station_id, unit_id), metrics in sorted(sums.items(), key=lambda kv: (kv[0][0], kv[0][1] or 0))
        for metric, value in sorted(metrics.items())
        if value
    ]
