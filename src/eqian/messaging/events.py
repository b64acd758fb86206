"""Outbox handlers of messaging: units that let an instruction's deadline pass unacknowledged are
re-notified through every channel they have (in-app, DingTalk, SMS), and their liaison officer and
the station's duty officers are told."""

from __future__ import annotations

import inspect
from collections.abc import Collection
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from eqian.core import outbox
from eqian.core.accounts import Role, User
from eqian.messaging.service import OVERDUE_TOPIC
from eqian.notifications import service as notifications
from eqian.organizations.models import LiaisonAssignment, Unit

ALL_CHANNELS = ("app", "dingtalk", "sms")


async def _notify(session: AsyncSession, *, channels: Collection[str], **kwargs: Any) -> int:
    """``notify`` with the ``channels`` keyword where the notifications service has it."""
    if "channels" in inspect.signature(notifications.notify).parameters:
        kwargs["channels"] = channels
    result: int = await notifications.notify(session, **kwargs)
    return result


async def on_overdue(session: AsyncSession, event: outbox.OutboxEvent) -> None:
    payload = event.payload
    unit_ids = [int(u) for u in payload.get("unit_ids") or []]
    if not unit_ids:
        return
    title = str(payload.get("title") or "")
    link = f"/messaging?instruction={int(payload['instruction_id'])}"
    staff = list(
        await session.scalars(
            select(User.id).where(
                User.role == Role.UNIT_SECURITY.value, User.unit_id.in_(unit_ids), User.is_active.is_(True)
            )
        )
    )
    await _notify(
        session,
        channels=ALL_CHANNELS,
        user_ids=staff,
        event_id=event.id,
        kind=OVERDUE_TOPIC,
        title=f"指令逾期未确认：{title}",
        body="请立即登录民芯对讲确认该指令。",
        link=link,
    )
    liaison = list(
        await session.scalars(
            select(LiaisonAssignment.officer_id)
            .join(User, User.id == LiaisonAssignment.officer_id)
            .where(LiaisonAssignment.unit_id.in_(unit_ids), User.is_active.is_(True))
            .distinct()
        )
    )
    stations = set(await session.scalars(select(Unit.station_id).where(Unit.id.in_(unit_ids)).distinct()))
    officers: list[int] = []
    for station_id in sorted(stations):
        officers += await notifications.officers_for(session, station_id=station_id, zone_id=None)
    await _notify(
        session,
        channels=("app",),
        user_ids=[u for u in dict.fromkeys([*liaison, *officers]) if u not in staff],
        event_id=event.id,
        kind=OVERDUE_TOPIC,
        title=f"指令逾期：{len(unit_ids)} 家单位未确认",
        body=title,
        link=link,
    )


def register() -> None:
    outbox.subscribe(OVERDUE_TOPIC, on_overdue)
