"""Outbox handlers of workforce: a registration or permit reminder is told to the unit's security
heads and to its station's officers (not the whole bureau: these are routine, and many)."""

from __future__ import annotations

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from eqian.core import outbox
from eqian.core.accounts import Role, User
from eqian.notifications import service as notifications

REMINDER_TOPIC = "workforce.reminder"
TITLES = {
    "registration_due": "员工居住登记即将到期",
    "permit_expiring": "员工居住证即将到期",
}


async def recipients(session: AsyncSession, *, unit_id: int, station_id: int | None) -> list[int]:
    conditions = [and_(User.role == Role.UNIT_SECURITY.value, User.unit_id == unit_id)]
    if station_id is not None:
        conditions.append(and_(User.role == Role.STATION_OFFICER.value, User.station_id == station_id))
    rows = await session.scalars(
        select(User.id).where(User.is_active.is_(True), or_(*conditions)).order_by(User.id)
    )
    return list(rows)


async def on_reminder(session: AsyncSession, event: outbox.OutboxEvent) -> None:
    payload = event.payload
    unit_id = int(payload["unit_id"])
    users = await recipients(session, unit_id=unit_id, station_id=payload.get("station_id"))
    reason = str(payload.get("reason", ""))
    # The payload carries only the name and masked ID: notifications are personal data too.
    who = f"{payload.get('name', '')}（{payload.get('id_number_masked', '')}）"
    body = f"{who}{payload.get('unit_name', '')}：到期日 {payload.get('due_on', '')}"
    await notifications.notify(
        session,
        user_ids=users,
        event_id=event.id,
        kind=REMINDER_TOPIC,
        title=TITLES.get(reason, "员工服务提醒"),
        body=body,
        link=f"/workforce/units/{unit_id}",
    )


def register() -> None:
    outbox.subscribe(REMINDER_TOPIC, on_reminder)
