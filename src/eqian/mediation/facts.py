"""Monthly facts of mediation (see ``eqian.core.facts``).

``mediation.cases`` and ``mediation.in_unit`` count cases opened in ``[start, end)``; the outcome
metrics (``success``, ``failed``, ``referred``, ``amount_recovered_yuan``, ``in_unit_success``)
count cases closed in it. "In unit" means handled by the unit's own advisors: the team of the
case's own unit (another unit's advisors do not count).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from eqian.core.facts import Fact, FactRows, fetch, merged
from eqian.mediation.models import MediationCase, MediationTeam


async def monthly_facts(session: AsyncSession, start: dt.datetime, end: dt.datetime) -> list[Fact]:
    return merged(await monthly_fact_rows(session, start, end))


async def monthly_fact_rows(session: AsyncSession, start: dt.datetime, end: dt.datetime) -> list[FactRows]:
    # The unit's own advisers: a team that belongs to the unit whose case it is.
    in_unit = MediationTeam.unit_id == MediationCase.unit_id

    def count_if(cond: Any) -> Any:
        return func.sum(case((cond, 1), else_=0))

    opened = await fetch(
        session,
        select(MediationCase.station_id, MediationCase.unit_id, func.count(), count_if(in_unit))
        .outerjoin(MediationTeam, MediationTeam.id == MediationCase.team_id)
        .where(MediationCase.opened_at >= start, MediationCase.opened_at < end)
        .group_by(MediationCase.station_id, MediationCase.unit_id),
    )
    closed = await fetch(
        session,
        select(
            MediationCase.station_id,
            MediationCase.unit_id,
            count_if(MediationCase.outcome == "agreement"),
            count_if(MediationCase.outcome == "failed"),
            count_if(MediationCase.outcome == "referred"),
            func.coalesce(func.sum(MediationCase.amount_recovered_fen), 0),
            count_if(in_unit & (MediationCase.outcome == "agreement")),
        )
        .outerjoin(MediationTeam, MediationTeam.id == MediationCase.team_id)
        .where(
            MediationCase.status == "closed",
            MediationCase.closed_at >= start,
            MediationCase.closed_at < end,
        )
        .group_by(MediationCase.station_id, MediationCase.unit_id),
    )
    return [
        FactRows(("mediation.cases", "mediation.in_unit"), opened),
        FactRows(
            (
                "mediation.success",
                "mediation.failed",
                "mediation.referred",
                "mediation.amount_recovered_yuan",
                "mediation.in_unit_success",
            ),
            [
                (s, u, ok, failed, referred, int(fen or 0) / 100, in_own)
                for s, u, ok, failed, referred, fen, in_own in closed
            ],
        ),
    ]
