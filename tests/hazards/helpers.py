"""Shared setup of the hazard tests: the district of ``make_world``, headers for every role, and
hazards inserted directly (with chosen times) where a test needs them."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from eqian.core.accounts import Role, User
from eqian.hazards import service
from eqian.hazards.models import ChecklistItem, Hazard, Inspection
from tests.factories import PASSWORD, World, bearer, make_world

API_I = "/api/v1/inspections"
API_H = "/api/v1/hazards"
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
assert PASSWORD


@dataclass
class HzWorld:
    world: World
    headers: dict[str, dict[str, str]] = field(default_factory=dict)
    items: dict[str, list[ChecklistItem]] = field(default_factory=dict)  # category -> items


async def make_hz_world(db: AsyncSession) -> HzWorld:
    w = await make_world(db)
    extra: dict[str, dict[str, Any]] = {
        "station_officer_b": {"role": Role.STATION_OFFICER, "station_id": w.station_b},
        "unit_security_b1": {"role": Role.UNIT_SECURITY, "unit_id": w.units["b1"]},
    }
    for username, attrs in extra.items():
        if username in w.users:  # newer factories make some of these already
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
    await service.ensure_checklists(db)
    await db.commit()
    hz = HzWorld(world=w)
    for who in EVERYONE:
        hz.headers[who] = await bearer(db, w.users[who])
    for item in await db.scalars(select(ChecklistItem).order_by(ChecklistItem.sort_order, ChecklistItem.id)):
        hz.items.setdefault(item.category_code, []).append(item)
    return hz


async def add_hazard(
    db: AsyncSession,
    unit_id: int,
    *,
    found_at: dt.datetime,
    severity: str = "medium",
    status: str = "open",
    verified_at: dt.datetime | None = None,
    deadline: dt.datetime | None = None,
) -> int:
    inspection = Inspection(unit_id=unit_id, kind="inspection", inspector_id=None, inspected_at=found_at)
    db.add(inspection)
    await db.flush()
    hazard = Hazard(
        unit_id=unit_id,
        inspection_id=inspection.id,
        item_id=None,
        description="测试隐患",
        severity=severity,
        status=status,
        found_at=found_at,
        deadline=deadline or service.deadline_for(severity, found_at),
        verified_at=verified_at,
        escalation_level=0,
    )
    db.add(hazard)
    await db.flush()
    await db.commit()
    return hazard.id
