"""Outbox handlers of hazards: an overdue hazard is told to the unit's security staff, its liaison
officer and the station's (and bureau's, and a joint zone's partner) officers."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from eqian.core import outbox
from eqian.core.accounts import Role, User
from eqian.hazards.jobs import OVERDUE_TOPIC
from eqian.hazards.models import Hazard
from eqian.notifications import service as notifications
from eqian.organizations.models import LiaisonAssignment, Unit

SEVERITY_ZH = {"low": "一般", "medium": "较大", "high": "重大", "critical": "特别重大"}


async def overdue_recipients(session: AsyncSession, unit: Unit) -> list[int]:
    unit_staff = await session.scalars(
        select(User.id).where(
            User.role == Role.UNIT_SECURITY.value, User.unit_id == unit.id, User.is_active.is_(True)
        )
    )
    liaison = await session.scalars(
        select(LiaisonAssignment.officer_id)
        .join(User, User.id == LiaisonAssignment.officer_id)
        .where(LiaisonAssignment.unit_id == unit.id, User.is_active.is_(True))
    )
    officers = await notifications.officers_for(
        session, station_id=unit.station_id, zone_id=unit.joint_zone_id
    )
    return list(dict.fromkeys([*unit_staff, *liaison, *officers]))


async def on_overdue(session: AsyncSession, event: outbox.OutboxEvent) -> None:
    payload = event.payload
    hazard = await session.get(Hazard, int(payload["hazard_id"]))
    unit = await session.get(Unit, int(payload["unit_id"]))
    if hazard is None or unit is None:  # nothing to tell; the event is still marked done
        return
    level = int(payload.get("level", 1))
    await notifications.notify(
        session,
        user_ids=await overdue_recipients(session, unit),
        event_id=event.id,
        kind=OVERDUE_TOPIC,
        title=f"隐患逾期未整改（{level}级督办）",
        body=f"{unit.name}：{hazard.description}（{SEVERITY_ZH.get(hazard.severity, hazard.severity)}）",
        link=f"/hazards/{hazard.id}",
    )


def register() -> None:
    outbox.subscribe(OVERDUE_TOPIC, on_overdue)
