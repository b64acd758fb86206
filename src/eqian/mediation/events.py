"""Outbox handlers of mediation: a new case is told to its team's mediators and to the station."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from eqian.core import outbox
from eqian.core.accounts import Role, User
from eqian.mediation.models import MediationCase
from eqian.mediation.schemas import DISPUTE_TYPES
from eqian.mediation.service import OPENED_TOPIC
from eqian.notifications import service as notifications


async def on_case_opened(session: AsyncSession, event: outbox.OutboxEvent) -> None:
    row = await session.get(MediationCase, int(event.payload["case_id"]))
    if row is None:
        return
    recipients: list[int] = []
    if row.team_id is not None:
        recipients += list(
            await session.scalars(
                select(User.id).where(
                    User.role == Role.MEDIATOR.value, User.team_id == row.team_id, User.is_active.is_(True)
                )
            )
        )
    else:  # nobody to take it yet: the station assigns it
        recipients += await notifications.officers_for(session, station_id=row.station_id, zone_id=None)
    await notifications.notify(
        session,
        user_ids=recipients,
        event_id=event.id,
        kind=OPENED_TOPIC,
        title=f"新调解案件：{DISPUTE_TYPES.get(row.dispute_type, row.dispute_type)}",
        body=row.summary[:200],
        link=f"/mediation/cases/{row.id}",
    )


def register() -> None:
    outbox.subscribe(OPENED_TOPIC, on_case_opened)
