"""Outbox handlers of activities: invited units' security heads hear of a new invitation and of a
cancellation."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from eqian.activities.models import Activity, ActivityInvitation
from eqian.activities.service import CANCELLED_TOPIC, INVITED_TOPIC
from eqian.core import outbox
from eqian.core.accounts import Role, User
from eqian.notifications import service as notifications

__all__ = ["CANCELLED_TOPIC", "INVITED_TOPIC", "register"]


async def _unit_users(session: AsyncSession, unit_ids: list[int]) -> list[int]:
    if not unit_ids:
        return []
    rows = await session.scalars(
        select(User.id)
        .where(User.role == Role.UNIT_SECURITY.value, User.unit_id.in_(unit_ids), User.is_active.is_(True))
        .order_by(User.id)
    )
    return list(rows)


async def on_invited(session: AsyncSession, event: outbox.OutboxEvent) -> None:
    activity = await session.get(Activity, int(event.payload["activity_id"]))
    if activity is None or activity.status == "cancelled":
        return
    users = await _unit_users(session, [int(u) for u in event.payload.get("unit_ids", [])])
    await notifications.notify(
        session,
        user_ids=users,
        event_id=event.id,
        kind=INVITED_TOPIC,
        title=f"活动邀请：{activity.title}",
        body=activity.location,
        link=f"/activities/{activity.id}",
    )


async def on_cancelled(session: AsyncSession, event: outbox.OutboxEvent) -> None:
    activity = await session.get(Activity, int(event.payload["activity_id"]))
    if activity is None:
        return
    unit_ids = list(
        await session.scalars(
            select(ActivityInvitation.unit_id).where(ActivityInvitation.activity_id == activity.id)
        )
    )
    await notifications.notify(
        session,
        user_ids=await _unit_users(session, unit_ids),
        event_id=event.id,
        kind=CANCELLED_TOPIC,
        title=f"活动取消：{activity.title}",
        link=f"/activities/{activity.id}",
    )


def register() -> None:
    outbox.subscribe(INVITED_TOPIC, on_invited)
    outbox.subscribe(CANCELLED_TOPIC, on_cancelled)
