"""Monthly facts of activities (警企恳谈) for the safety index and the cockpit (see ``eqian.core.facts``).

Per unit, over the activities that started in ``[start, end)``: ``activities.invited`` (the unit was
invited) and ``activities.attended`` (its attendance was recorded as present). One grouped query.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from eqian.activities.models import Activity, ActivityInvitation
from eqian.core.facts import Fact, FactRows, expand, fetch
from eqian.organizations.models import Unit


async def monthly_facts(session: AsyncSession, start: dt.datetime, end: dt.datetime) -> list[Fact]:
    return expand(await monthly_fact_rows(session, start, end))


async def monthly_fact_rows(session: AsyncSession, start: dt.datetime, end: dt.datetime) -> list[FactRows]:
    rows = await fetch(
        session,
        select(
            Unit.station_id,
            ActivityInvitation.unit_id,
            func.count(),
            func.sum(case((ActivityInvitation.attended.is_(True), 1), else_=0)),
        )
        .join(Activity, Activity.id == ActivityInvitation.activity_id)
        .join(Unit, Unit.id == ActivityInvitation.unit_id)
        .where(Activity.starts_at >= start, Activity.starts_at < end, Activity.status != "cancelled")
        .group_by(Unit.station_id, ActivityInvitation.unit_id),
    )
    return [FactRows(("activities.invited", "activities.attended"), rows)]
