"""Monthly facts of messaging (see ``eqian.core.facts``), per unit, for the safety index.

An instruction's receipt counts in the month of its deadline: ``messaging.instructions`` (receipts
due), ``messaging.acknowledged``, ``messaging.acknowledged_on_time`` (by the deadline) and
``messaging.ack_latency_seconds_sum`` (over the acknowledged ones).

Judged as things stood at the end of the month, or now for the month under way (as the incidents'
facts are): receipts due by then, acknowledgements made by then. An acknowledgement sent weeks
after the deadline does not change a past month, and a receipt not due yet is not counted as due.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import and_, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from eqian.core.facts import Fact, FactRows, expand, fetch, judged_at
from eqian.messaging.models import Instruction, Receipt

METRICS = (
    "messaging.instructions",
    "messaging.acknowledged",
    "messaging.acknowledged_on_time",
    "messaging.ack_latency_seconds_sum",
)


async def monthly_facts(
    session: AsyncSession, start: dt.datetime, end: dt.datetime, *, now: dt.datetime | None = None
) -> list[Fact]:
    return expand(await monthly_fact_rows(session, start, end, now=now))


async def monthly_fact_rows(
    session: AsyncSession, start: dt.datetime, end: dt.datetime, *, now: dt.datetime | None = None
) -> list[FactRows]:
    judged = judged_at(end, now)
    acked = and_(Receipt.acknowledged_at.is_not(None), Receipt.acknowledged_at < judged)
    on_time = and_(acked, Receipt.acknowledged_at <= Receipt.deadline)
    rows = await fetch(
        session,
        select(
            Receipt.station_id,
            Receipt.unit_id,
            func.count(),
            func.sum(case((acked, 1), else_=0)),
            func.sum(case((on_time, 1), else_=0)),
            func.sum(case((acked, Receipt.ack_latency_seconds), else_=0.0)),
        )
        # By the instructions' deadline index: a receipt's deadline is its instruction's.
        .where(
            Receipt.instruction_id.in_(
                select(Instruction.id).where(Instruction.deadline >= start, Instruction.deadline < judged)
            )
        )
        .group_by(Receipt.station_id, Receipt.unit_id),
    )
    return [FactRows(METRICS, rows)]
