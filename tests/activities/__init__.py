"""A district with activities for the activities tests: ``make_activity_world`` builds on
``tests.factories.make_world`` (station A: a1 garment, a2 market, a3 property; station B: b1
garment, b2 logistics) and adds a partner officer whose joint zone holds a3."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from eqian.activities.models import Activity, ActivityInvitation
from eqian.core.accounts import Role, User
from eqian.organizations.models import JointZone, Unit
from tests.factories import _HASH, World, bearer, make_world

LOCAL = ZoneInfo("Asia/Shanghai")
API = "/api/v1/activities"
EVERYONE = [
    "bureau_admin",
    "station_officer",
    "station_officer_b",
    "liaison_officer",
    "unit_security",
    "mediator",
    "service_point_staff",
    "partner_officer",
]


def local(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, tzinfo=LOCAL)


@dataclass
class ActivityWorld:
    world: World
    headers: dict[str, dict[str, str]] = field(default_factory=dict)
    activities: dict[str, int] = field(default_factory=dict)
    invitations: dict[tuple[str, str], int] = field(default_factory=dict)  # (activity, unit label) -> id

    def unit(self, label: str) -> int:
        return self.world.units[label]


async def add_activity(
    db: AsyncSession,
    *,
    station_id: int | None,
    kind: str,
    starts_at: dt.datetime,
    status: str = "planned",
    category: str | None = None,
    title: str | None = None,
    week_start: dt.date | None = None,
) -> int:
    a = Activity(
        station_id=station_id,
        kind=kind,
        title=title or f"{kind} {starts_at:%m-%d}",
        category_code=category,
        starts_at=starts_at,
        ends_at=starts_at + dt.timedelta(hours=2),
        location="织里镇",
        status=status,
        minutes="",
        week_start=week_start,
    )
    db.add(a)
    await db.flush()
    return a.id


async def invite(db: AsyncSession, activity_id: int, unit_id: int, **values: object) -> int:
    inv = ActivityInvitation(activity_id=activity_id, unit_id=unit_id, response="invited", **values)
    db.add(inv)
    await db.flush()
    return inv.id


async def make_activity_world(db: AsyncSession) -> ActivityWorld:
    w = await make_world(db)
    aw = ActivityWorld(world=w)
    zone = JointZone(
        code="qiaolou", name="乔溇联勤区", partner_agency="吴江公安", station_id=w.station_a, polygon=[]
    )
    db.add(zone)
    await db.flush()
    await db.execute(update(Unit).where(Unit.id == w.units["a3"]).values(joint_zone_id=zone.id))
    partner = User(
        username="partner_officer",
        display_name="partner_officer",
        password_hash=_HASH,
        role=Role.PARTNER_OFFICER.value,
        zone_id=zone.id,
    )
    db.add(partner)
    await db.flush()
    w.users["partner_officer"] = partner
    past = local(2026, 2, 11, 14)
    specs = {
        # label: station, kind, category, invited unit labels
        "a_round": (w.station_a, "roundtable", "garment", ["a1"]),
        "a_meet": (w.station_a, "industry_meeting", "market", ["a2"]),
        "a_patrol": (w.station_a, "joint_patrol", None, []),
        "b_round": (w.station_b, "roundtable", "garment", ["b1"]),
        "bureau": (None, "antifraud_training", None, ["a1", "b2"]),
    }
    for i, (label, (station, kind, cat, units)) in enumerate(specs.items()):
        starts = past + dt.timedelta(days=i)
        week = starts.date() - dt.timedelta(days=starts.weekday()) if kind == "roundtable" else None
        aid = await add_activity(
            db, station_id=station, kind=kind, starts_at=starts, category=cat, week_start=week
        )
        aw.activities[label] = aid
        for u in units:
            aw.invitations[(label, u)] = await invite(db, aid, w.units[u])
    await db.commit()
    for name, user in w.users.items():
        aw.headers[name] = await bearer(db, user)
    return aw
