"""Monthly facts of 生态警务 for the safety index and the cockpit (see ``eqian.core.facts``).

``environment.alerts``: alerts raised in ``[start, end)`` per unit; an alert about a disposal
facility rather than a unit counts with ``unit_id`` and ``station_id`` None. One grouped query.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from eqian.core.facts import Fact, FactRows, fetch, merged
from eqian.environment.models import EnvAlert
from eqian.organizations.models import Unit


async def monthly_facts(session: AsyncSession, start: dt.datetime, end: dt.datetime) -> list[Fact]:
    return merged(await monthly_fact_rows(session, start, end))


async def monthly_fact_rows(session: AsyncSession, start: dt.datetime, end: dt.datetime) -> list[FactRows]:
    rows = await fetch(
        session,
        select(Unit.station_id, EnvAlert.unit_id, func.count())
        .outerjoin(Unit, Unit.id == EnvAlert.unit_id)
        .where(EnvAlert.created_at >= start, EnvAlert.created_at < end)
        .group_by(Unit.station_id, EnvAlert.unit_id),
    )
    return [FactRows(("environment.alerts",), rows)]
