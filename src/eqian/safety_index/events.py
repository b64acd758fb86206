"""Outbox handlers of safety_index: a computed month is told to every unit's security staff.

One notification per recipient, written in one batch for the whole month (the outbox event's id
makes a repeat of the event add nothing). A month re-run with the same model says ``notify: false``.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from eqian.core import outbox
from eqian.core.accounts import Role, User
from eqian.notifications import service as notifications
from eqian.safety_index.models import SafetyIndexScore
from eqian.safety_index.service import COMPUTED_TOPIC


async def on_computed(session: AsyncSession, event: outbox.OutboxEvent) -> None:
    if not event.payload.get("notify", True):
        return
    month = str(event.payload["month"])
    users = list(
        await session.scalars(
            select(User.id)
            .join(SafetyIndexScore, SafetyIndexScore.unit_id == User.unit_id)
            .where(
                SafetyIndexScore.month == month,
                User.role == Role.UNIT_SECURITY.value,
                User.is_active.is_(True),
            )
            .order_by(User.id)
        )
    )
    if not users:
        return
    y, m = month.split("-")
    await notifications.notify(
        session,
        user_ids=users,
        event_id=event.id,
        kind=COMPUTED_TOPIC,
        title=f"{y}年{int(m)}月企业平安指数已发布",
        body="请查看本单位得分、扣分原因和整改建议。",
        link=f"/safety-index?month={month}",
    )


def register() -> None:
    outbox.subscribe(COMPUTED_TOPIC, on_computed)
