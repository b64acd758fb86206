"""Monthly facts of the workforce for the safety index and the cockpit (see ``eqian.core.facts``).

Each hire is attributed to the (Asia/Shanghai) month of ``hired_on``: ``workforce.hired``, and how
its residence registration went: ``workforce.registered_on_time`` (registered no later than
``hired_on`` + the legal window, including a registration that predates the hire),
``workforce.registration_late`` (registered after the window) and ``workforce.unregistered`` (not
registered yet), of which ``workforce.registration_pending`` are still inside their window today
(not a failure yet: the index leaves them out of the rate). One grouped query.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from eqian.core.facts import Fact, FactRows, expand, fetch
from eqian.organizations.models import Unit
from eqian.workforce.models import Employment, Residence
from eqian.workforce.service import registration_window_days

LOCAL_TZ = ZoneInfo("Asia/Shanghai")


def _days_between(session: AsyncSession, start: Any, end: Any) -> ColumnElement[Any]:
    if session.get_bind().dialect.name == "postgresql":
        return end - start  # type: ignore[no-any-return]
    return func.julianday(end) - func.julianday(start)


METRICS = (
    "workforce.hired",
    "workforce.registered_on_time",
    "workforce.registration_late",
    "workforce.unregistered",
    "workforce.registration_pending",
)


async def monthly_facts(session: AsyncSession, start: dt.datetime, end: dt.datetime) -> list[Fact]:
    return expand(await monthly_fact_rows(session, start, end))


async def monthly_fact_rows(session: AsyncSession, start: dt.datetime, end: dt.datetime) -> list[FactRows]:
    first, after = start.astimezone(LOCAL_TZ).date(), end.astimezone(LOCAL_TZ).date()
    window = registration_window_days()
    today = dt.datetime.now(LOCAL_TZ).date()
    registered = Residence.registered_on.is_not(None)
    on_time = and_(registered, _days_between(session, Employment.hired_on, Residence.registered_on) <= window)
    rows = await fetch(
        session,
        select(
            Unit.station_id,
            Employment.unit_id,
            func.count(),
            func.sum(case((on_time, 1), else_=0)),
            func.sum(case((registered, 1), else_=0)),
            func.sum(
                case(
                    (and_(~registered, Employment.hired_on > today - dt.timedelta(days=window)), 1),
                    else_=0,
                )
            ),
        )
        .join(Unit, Unit.id == Employment.unit_id)
        .outerjoin(Residence, Residence.person_id == Employment.person_id)
        .where(Employment.hired_on >= first, Employment.hired_on < after)
        .group_by(Unit.station_id, Employment.unit_id),
    )
    return [
        FactRows(
            METRICS,
            [
                (s, u, hired, ok or 0, (reg or 0) - (ok or 0), hired - (reg or 0), pending)
                for s, u, hired, ok, reg, pending in rows
            ],
        )
    ]
