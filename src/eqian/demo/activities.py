"""Demo police–enterprise activities: two years of weekly roundtables per station rotating through
its industries, monthly industry meetings, joint patrols, safety and anti-fraud trainings, with
invitations, answers and attendance that fall with each unit's hidden risk, and the next four
weeks planned. Bulk inserts with explicit ids; the same every time for a seed and a day."""

from __future__ import annotations

import datetime as dt
import random
from collections import defaultdict
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import Table, func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from eqian.activities.models import Activity, ActivityInvitation, ActivityIssue
from eqian.core.accounts import Role, User
from eqian.core.db import Base
from eqian.demo.risk import hidden_risk
from eqian.organizations.models import Station, Unit, UnitCategory

LOCAL = ZoneInfo("Asia/Shanghai")
HISTORY_DAYS = 730
PLANNED_WEEKS = 4
ROUNDTABLE_INVITES = 15  # a roundtable seats about fifteen enterprises of the week's industry
MEETING_INVITES = 20
TRAINING_INVITES = 10
PATROL_INVITES = 3
BUREAU_INVITES = 20
ID_MODELS: tuple[type[Base], ...] = (Activity, ActivityInvitation, ActivityIssue)
ISSUES = (
    "厂区周边夜间照明不足，希望增设监控",
    "员工电动车充电点不够，存在飞线充电",
    "希望派出所来厂开展一次反诈宣讲",
    "加工费拖欠纠纷，希望协调调解",
    "商标被仿冒，请求打假支持",
    "上下班高峰路口拥堵，希望交警疏导",
    "新招工人居住登记流程咨询",
)
MINUTES = "通报近期辖区警情与{topic}，听取企业意见，布置下阶段安全防范工作。"


def _table(model: type[Base]) -> Table:
    return cast(Table, model.__table__)


def _at(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), LOCAL).astimezone(dt.UTC)


async def _next_id(session: AsyncSession, model: type[Base]) -> int:
    table = _table(model)
    return int((await session.execute(select(func.coalesce(func.max(table.c.id), 0)))).scalar_one()) + 1


async def seed_activities(session: AsyncSession, *, seed: int, today: dt.date) -> dict[str, int]:
    """Insert the demo activities for the stations, units and users already seeded; returns row counts.

    The caller commits. On PostgreSQL the id sequences are moved past the explicit ids.
    """
    rng = random.Random(f"activities:{seed}")
    stations = list((await session.execute(select(Station.id).order_by(Station.id))).scalars())
    order: dict[str, int] = dict(
        (await session.execute(select(UnitCategory.code, UnitCategory.sort_order))).all()
    )
    units_by_station: dict[int, list[int]] = defaultdict(list)
    by_station_category: dict[tuple[int, str], list[int]] = defaultdict(list)
    for uid, sid, cat in (
        await session.execute(
            select(Unit.id, Unit.station_id, Unit.category_code)
            .where(Unit.status == "active")
            .order_by(Unit.id)
        )
    ).all():
        units_by_station[sid].append(uid)
        by_station_category[(sid, cat)].append(uid)
    officers: dict[int, int] = {}
    admin: int | None = None
    for user_id, role, user_station in (
        await session.execute(select(User.id, User.role, User.station_id).order_by(User.id))
    ).all():
        if role == Role.STATION_OFFICER.value and user_station is not None:
            officers.setdefault(user_station, user_id)
        elif role == Role.BUREAU_ADMIN.value and admin is None:
            admin = user_id
    names = dict((await session.execute(select(UnitCategory.code, UnitCategory.name_zh))).all())

    activities: list[dict[str, Any]] = []
    invitations: list[dict[str, Any]] = []
    issues: list[dict[str, Any]] = []
    next_activity = await _next_id(session, Activity)
    next_invitation = await _next_id(session, ActivityInvitation)
    next_issue = await _next_id(session, ActivityIssue)
    now = dt.datetime.combine(today, dt.time(), LOCAL).astimezone(dt.UTC)
    risk_cache: dict[int, float] = {}

    def risk(unit_id: int) -> float:
        if unit_id not in risk_cache:
            risk_cache[unit_id] = hidden_risk(seed, unit_id)
        return risk_cache[unit_id]

    def add(
        *,
        station_id: int | None,
        kind: str,
        title: str,
        category: str | None,
        starts: dt.datetime,
        hours: float,
        location: str,
        invited: list[int],
        week_start: dt.date | None = None,
    ) -> None:
        nonlocal next_activity, next_invitation, next_issue
        past = starts < now
        status = ("cancelled" if rng.random() < 0.03 else "held") if past else "planned"
        aid = next_activity
        next_activity += 1
        activities.append(
            {
                "id": aid,
                "station_id": station_id,
                "kind": kind,
                "title": title,
                "category_code": category,
                "starts_at": starts,
                "ends_at": starts + dt.timedelta(hours=hours),
                "location": location,
                "organiser_id": officers.get(station_id, admin) if station_id is not None else admin,
                "status": status,
                "minutes": MINUTES.format(topic=title) if status == "held" else "",
                "week_start": week_start,
                "created_at": starts - dt.timedelta(days=7),
                "updated_at": starts + dt.timedelta(hours=hours) if past else starts - dt.timedelta(days=7),
            }
        )
        came: list[int] = []
        for uid in invited:
            r = risk(uid)
            attends = rng.random() < 0.92 - 0.85 * r  # risky units skip more
            answered = past or rng.random() < 0.5
            response = (
                ("accepted" if attends or rng.random() < 0.3 else "declined") if answered else "invited"
            )
            row: dict[str, Any] = {
                "id": next_invitation,
                "activity_id": aid,
                "unit_id": uid,
                "response": response,
                "responded_at": starts - dt.timedelta(days=rng.randint(1, 5))
                if response != "invited"
                else None,
                "attended": None,
                "attendee_count": 0,
                "attendee_names": "",
                "recorded_at": None,
            }
            if status == "held":
                row["attended"] = attends
                row["attendee_count"] = rng.randint(1, 3) if attends else 0
                row["recorded_at"] = starts + dt.timedelta(hours=hours + 1)
                if attends:
                    came.append(uid)
            invitations.append(row)
            next_invitation += 1
        if status == "held" and came and rng.random() < 0.15:
            issues.append(
                {
                    "id": next_issue,
                    "activity_id": aid,
                    "unit_id": rng.choice(came),
                    "text": rng.choice(ISSUES),
                    "raised_by_id": officers.get(station_id, admin) if station_id is not None else admin,
                    "created_at": starts + dt.timedelta(hours=hours),
                }
            )
            next_issue += 1

    def sample(pool: list[int], k: int) -> list[int]:
        return sorted(rng.sample(pool, k)) if len(pool) > k else list(pool)

    first_week = today - dt.timedelta(days=HISTORY_DAYS)
    first_week -= dt.timedelta(days=first_week.weekday())
    this_week = today - dt.timedelta(days=today.weekday())
    weeks: list[dt.date] = []
    week = first_week
    while week < this_week + dt.timedelta(weeks=PLANNED_WEEKS):
        weeks.append(week)
        week += dt.timedelta(weeks=1)
    months = sorted({(w.year, w.month) for w in weeks})

    for station_id in stations:
        pool = units_by_station.get(station_id, [])
        if not pool:
            continue
        rotation = sorted(
            {c for (s, c) in by_station_category if s == station_id}, key=lambda c: (order[c], c)
        )
        place = "派出所三楼会议室"
        for i, week in enumerate(weeks):
            cat = rotation[i % len(rotation)]
            add(
                station_id=station_id,
                kind="roundtable",
                title=f"警企恳谈会·{names[cat]}",
                category=cat,
                starts=_at(week + dt.timedelta(days=2), 14, 30),
                hours=2,
                location=place,
                invited=sample(by_station_category[(station_id, cat)], ROUNDTABLE_INVITES),
                week_start=week,
            )
            if i % 2 == 1:  # a joint patrol every other Friday evening
                add(
                    station_id=station_id,
                    kind="joint_patrol",
                    title="警企联合巡逻",
                    category=None,
                    starts=_at(week + dt.timedelta(days=4), 19),
                    hours=3,
                    location="辖区重点路段",
                    invited=sample(pool, PATROL_INVITES),
                )
        for m, (year, month) in enumerate(months):
            first = dt.date(year, month, 1)
            cat = rotation[(m + len(rotation) // 2) % len(rotation)]
            thursday = first + dt.timedelta(days=(3 - first.weekday()) % 7)
            add(
                station_id=station_id,
                kind="industry_meeting",
                title=f"{names[cat]}行业例会",
                category=cat,
                starts=_at(thursday, 9, 30),
                hours=1.5,
                location=place,
                invited=sample(by_station_category[(station_id, cat)], MEETING_INVITES),
            )
            kind = "safety_training" if m % 2 == 0 else "antifraud_training"
            add(
                station_id=station_id,
                kind=kind,
                title="消防安全培训" if kind == "safety_training" else "反诈知识培训",
                category=None,
                starts=_at(first + dt.timedelta(days=17), 15),
                hours=2,
                location="企业培训室",
                invited=sample(pool, TRAINING_INVITES),
            )
    everyone = sorted(u for pool in units_by_station.values() for u in pool)
    if everyone:
        for year, month in months:
            if month % 3 == 1:  # a bureau-wide anti-fraud training each quarter
                add(
                    station_id=None,
                    kind="antifraud_training",
                    title="全局反诈专题培训",
                    category=None,
                    starts=_at(dt.date(year, month, 25), 14),
                    hours=2,
                    location="织里分局报告厅",
                    invited=sample(everyone, BUREAU_INVITES),
                )

    for model, rows in ((Activity, activities), (ActivityInvitation, invitations), (ActivityIssue, issues)):
        if rows:
            await session.execute(insert(_table(model)), rows)
    if session.get_bind().dialect.name == "postgresql":
        for id_model in ID_MODELS:
            name = _table(id_model).name
            await session.execute(
                text(
                    f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "  # noqa: S608 - names from our models
                    f"COALESCE((SELECT MAX(id) FROM {name}), 1), (SELECT MAX(id) FROM {name}) IS NOT NULL)"
                )
            )
    return {"activities": len(activities), "invitations": len(invitations), "issues": len(issues)}
