"""Outbox handlers of requests: a new request is told to who handles it, a resolution to the
unit's security staff, an overdue one to the handler and the station."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from eqian.core import outbox
from eqian.core.accounts import Role, User
from eqian.notifications import service as notifications
from eqian.organizations.models import LiaisonAssignment
from eqian.requests.models import EnterpriseRequest
from eqian.requests.schemas import KINDS
from eqian.requests.service import OVERDUE_TOPIC, RESOLVED_TOPIC, SUBMITTED_TOPIC


async def handlers_of(session: AsyncSession, row: EnterpriseRequest) -> list[int]:
    """The assignee if any, else the unit's liaison officers and the station's officers."""
    if row.assignee_id is not None:
        return [row.assignee_id]
    liaison = await session.scalars(
        select(LiaisonAssignment.officer_id)
        .join(User, User.id == LiaisonAssignment.officer_id)
        .where(LiaisonAssignment.unit_id == row.unit_id, User.is_active.is_(True))
    )
    station = await session.scalars(
        select(User.id).where(
            User.role == Role.STATION_OFFICER.value,
            User.station_id == row.station_id,
            User.is_active.is_(True),
        )
    )
    return list(dict.fromkeys([*liaison, *station]))


async def _load(session: AsyncSession, event: outbox.OutboxEvent) -> EnterpriseRequest | None:
    return await session.get(EnterpriseRequest, int(event.payload["request_id"]))


async def on_submitted(session: AsyncSession, event: outbox.OutboxEvent) -> None:
    row = await _load(session, event)
    if row is None:
        return
    await notifications.notify(
        session,
        user_ids=await handlers_of(session, row),
        event_id=event.id,
        kind=SUBMITTED_TOPIC,
        title=f"新涉企诉求：{KINDS.get(row.kind, row.kind)}",
        body=row.title,
        link=f"/requests/{row.id}",
    )


async def on_resolved(session: AsyncSession, event: outbox.OutboxEvent) -> None:
    row = await _load(session, event)
    if row is None:
        return
    unit_staff = await session.scalars(
        select(User.id).where(
            User.role == Role.UNIT_SECURITY.value, User.unit_id == row.unit_id, User.is_active.is_(True)
        )
    )
    await notifications.notify(
        session,
        user_ids=list(unit_staff),
        event_id=event.id,
        kind=RESOLVED_TOPIC,
        title="诉求已办结，请评价",
        body=row.title,
        link=f"/requests/{row.id}",
    )


async def on_overdue(session: AsyncSession, event: outbox.OutboxEvent) -> None:
    row = await _load(session, event)
    if row is None:
        return
    recipients = await handlers_of(session, row)
    recipients += await notifications.officers_for(session, station_id=row.station_id, zone_id=None)
    await notifications.notify(
        session,
        user_ids=list(dict.fromkeys(recipients)),
        event_id=event.id,
        kind=OVERDUE_TOPIC,
        title="涉企诉求超期未办结",
        body=row.title,
        link=f"/requests/{row.id}",
    )


def register() -> None:
    outbox.subscribe(SUBMITTED_TOPIC, on_submitted)
    outbox.subscribe(RESOLVED_TOPIC, on_resolved)
    outbox.subscribe(OVERDUE_TOPIC, on_overdue)
