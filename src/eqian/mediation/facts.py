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

from eqian.core.facts import Fact, fetch
from eqian.mediation.models import MediationCase, MediationTeam


async def monthly_facts(session: AsyncSession, start: dt.datetime, end: dt.datetime) -> list[Fact]:
    # The unit's own advisers: a team that belongs to the unit whose case it is.
    in_unit = MediationTeam.unit_id == MediationCase.unit_id
    facts: list[Fact] = []
    opened = await fetch(
        session,
        select(
            MediationCase.station_id,
            MediationCase.unit_id,
            func.count(),
            func.sum(case((in_unit, 1), else_=0)),
        )
        .outerjoin(MediationTeam, MediationTeam.id == MediationCase.team_id)
        .where(MediationCase.opened_at >= start, MediationCase.opened_at < end)
        .group_by(MediationCase.station_id, MediationCase.unit_id),
    )
    for station_id, unit_id, n, n_unit in opened:
        facts.append(Fact(station_id, unit_id, "mediation.cases", float(n)))
        if n_unit:
            facts.append(Fact(station_id, unit_id, "mediation.in_unit", float(n_unit)))

    def count_if(cond: Any) -> Any:
        return func.sum(case((cond, 1), else_=0))

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
    for station_id, unit_id, ok, failed, referred, fen, unit_ok in closed:
        for metric, value in (
            ("mediation.success", ok),
            ("mediation.failed", failed),
            ("mediation.referred", referred),
            ("mediation.amount_recovered_yuan", int(fen or 0) / 100),
            ("mediation.in_unit_success", unit_ok),
        ):
            if value:
                facts.append(Fact(station_id, unit_id, metric, float(value)))
    return facts
