"""Monthly facts of enterprise requests (see ``eqian.core.facts``): ``requests.submitted`` by the
month of submission; ``requests.resolved`` and ``requests.resolve_days_sum`` by the month of
resolution; ``requests.rated`` and ``requests.rating_sum`` by the month of the rating."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from eqian.core.facts import Fact, FactRows, fetch, merged
from eqian.requests.models import EnterpriseRequest as R
from eqian.requests.service import days_between


async def monthly_facts(session: AsyncSession, start: dt.datetime, end: dt.datetime) -> list[Fact]:
    return merged(await monthly_fact_rows(session, start, end))


async def monthly_fact_rows(session: AsyncSession, start: dt.datetime, end: dt.datetime) -> list[FactRows]:
    dialect = session.get_bind().dialect.name
    by = (R.station_id, R.unit_id)
    submitted = await fetch(
        session, select(*by, func.count()).where(R.submitted_at >= start, R.submitted_at < end).group_by(*by)
    )
    resolved = await fetch(
        session,
        select(*by, func.count(), func.sum(days_between(R.submitted_at, R.resolved_at, dialect)))
        .where(R.resolved_at.is_not(None), R.resolved_at >= start, R.resolved_at < end)
        .group_by(*by),
    )
    rated = await fetch(
        session,
        select(*by, func.count(), func.sum(R.rating))
        .where(R.rating.is_not(None), R.rated_at >= start, R.rated_at < end)
        .group_by(*by),
    )
    return [
        FactRows(("requests.submitted",), submitted),
        FactRows(
            ("requests.resolved", "requests.resolve_days_sum"),
            [(s, u, n, round(float(days or 0), 4)) for s, u, n, days in resolved],
        ),
        FactRows(("requests.rated", "requests.rating_sum"), rated),
    ]
