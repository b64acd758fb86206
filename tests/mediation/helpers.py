"""Shared setup of the mediation and request tests: ``make_world``'s district plus a second
station's officer and unit head, two more teams (老兵驿站 at station B taking labour and
processing-fee disputes; a1's own advisors) with members, and bearer headers for everyone."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from eqian.core.accounts import Role, User
from eqian.mediation.models import MediationCase, MediationMember, MediationParty, MediationTeam
from tests.factories import World, bearer, make_world

EVERYONE = [
    "bureau_admin",
    "station_officer",
    "station_officer_b",
    "liaison_officer",
    "unit_security",
    "unit_security_b1",
    "mediator",
    "mediator_b",
    "service_point_staff",
]
API = "/api/v1/mediation"


@dataclass
class MedWorld:
    world: World
    teams: dict[str, int] = field(default_factory=dict)  # dajie, veterans, a1_advisors
    members: dict[str, int] = field(default_factory=dict)
    headers: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def units(self) -> dict[str, int]:
        return self.world.units


async def make_med_world(db: AsyncSession) -> MedWorld:
    w = await make_world(db)
    veterans = MediationTeam(
        name="老兵驿站", kind="veterans", station_id=w.station_b, specialties="labor,processing_fee"
    )
    advisors = MediationTeam(
        name="贝贝童装调解小组", kind="unit", station_id=w.station_a, unit_id=w.units["a1"], specialties=""
    )
    db.add_all([veterans, advisors])
    await db.flush()
    extra: dict[str, dict[str, Any]] = {
        "station_officer_b": {"role": Role.STATION_OFFICER, "station_id": w.station_b},
        "unit_security_b1": {"role": Role.UNIT_SECURITY, "unit_id": w.units["b1"]},
        "mediator_b": {"role": Role.MEDIATOR, "team_id": veterans.id},
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
    mw = MedWorld(world=w, teams={"dajie": w.team, "veterans": veterans.id, "a1_advisors": advisors.id})
    specs = {
        "li": (w.team, "李大姐", "family,neighbor", w.users["mediator"].id),
        "wang": (w.team, "王大姐", "", None),
        "zhao": (veterans.id, "赵班长", "labor", w.users["mediator_b"].id),
    }
    for key, (team_id, name, specialties, user_id) in specs.items():
        member = MediationMember(team_id=team_id, name=name, specialties=specialties, user_id=user_id)
        db.add(member)
        await db.flush()
        mw.members[key] = member.id
    await db.commit()
    for who in EVERYONE:
        mw.headers[who] = await bearer(db, w.users[who])
    return mw


async def add_case(
    db: AsyncSession,
    *,
    station_id: int,
    team_id: int | None,
    unit_id: int | None = None,
    opened_at: dt.datetime,
    dispute_type: str = "labor",
    closed_at: dt.datetime | None = None,
    outcome: str | None = None,
    recovered_fen: int = 0,
    service_point_id: int | None = None,
) -> int:
    row = MediationCase(
        source="walk_in",
        station_id=station_id,
        unit_id=unit_id,
        service_point_id=service_point_id,
        team_id=team_id,
        dispute_type=dispute_type,
        summary="测试纠纷",
        status="closed" if closed_at else "open",
        outcome=outcome,
        amount_recovered_fen=recovered_fen,
        opened_at=opened_at,
        closed_at=closed_at,
    )
    db.add(row)
    await db.flush()
    db.add(MediationParty(case_id=row.id, name="张三", role="applicant", phone="13812345678"))
    await db.commit()
    return row.id
