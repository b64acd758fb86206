"""Shared setup of the incident tests: the district of ``make_world`` with a second station's
officer and unit, headers for every role, and incidents inserted directly where a test needs
chosen times."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from eqian.core.accounts import Role, User
from eqian.incidents import linking, routing
from eqian.incidents.models import Incident
from tests.factories import World, bearer, make_world

API = "/api/v1/incidents"
EVERYONE = [
    "bureau_admin",
    "station_officer",
    "station_officer_b",
    "liaison_officer",
    "unit_security",
    "unit_security_b1",
    "mediator",
    "service_point_staff",
]


@dataclass
class IncWorld:
    world: World
    headers: dict[str, dict[str, str]] = field(default_factory=dict)

    def user_id(self, name: str) -> int:
        return self.world.users[name].id


async def make_inc_world(db: AsyncSession) -> IncWorld:
    linking.invalidate()
    routing.invalidate()
    w = await make_world(db)
    extra: dict[str, dict[str, Any]] = {
        "station_officer_b": {"role": Role.STATION_OFFICER, "station_id": w.station_b},
        "unit_security_b1": {"role": Role.UNIT_SECURITY, "unit_id": w.units["b1"]},
    }
    for username, attrs in extra.items():
        if username in w.users:
            continue
        role = attrs.pop("role")
        user = User(
            username=username,
            display_name=username,
            password_hash=w.users["bureau_admin"].password_hash,
            role=role.value,
            **attrs,
        )
        db.add(user)
        await db.flush()
        w.users[username] = user
    await db.commit()
    iw = IncWorld(world=w)
    for who in EVERYONE:
        iw.headers[who] = await bearer(db, w.users[who])
    return iw


_serial = 0


async def add_incident(
    db: AsyncSession,
    *,
    station_id: int,
    reported_at: dt.datetime,
    unit_id: int | None = None,
    category: str = "labor",
    police: bool = False,
    route: str = "self_governance",
    status: str = "reported",
    sla_hours: int = 72,
    severity: str = "low",
    resolved_at: dt.datetime | None = None,
    fraud_loss: Decimal | None = None,
    fraud_recovered: Decimal | None = None,
    description: str = "工人反映老板拖欠工资三个月",
) -> int:
    global _serial
    _serial += 1
    incident = Incident(
        source_key=f"n:test-{_serial}-{reported_at.timestamp()}",
        source="api",
        reported_at=reported_at,
        station_id=station_id,
        unit_id=unit_id,
        description=description,
        caller_phone="13912345678",
        category=category,
        police=police,
        confidence=0.9,
        evidence=[],
        route=route,
        sla_hours=sla_hours,
        due_at=reported_at + dt.timedelta(hours=sla_hours),
        status=status,
        severity=severity,
        resolved_at=resolved_at,
        fraud_loss_yuan=fraud_loss,
        fraud_recovered_yuan=fraud_recovered,
    )
    db.add(incident)
    await db.commit()
    return incident.id
