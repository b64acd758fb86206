"""Demo workforce: two years of migrant-worker hires and departures with registration gaps.

Every unit gets positions in proportion to its ``employee_count`` (scaled so that a town has at
most ~40,000 persons). Each position is a chain of stays (tenure ~ 400 days, short gaps between
them) starting up to a year before the two-year window; some hires are people who left another
unit shortly before (one person, several employments). Registration follows each unit's hidden
risk: safe units register nearly everyone within the 30-day window, risky ones late or never.
Everything is planned in memory with a seeded ``random.Random`` and inserted in bulk; the caller
commits (``seed_demo`` calls this inside its transaction, after the units exist).
"""

from __future__ import annotations

import datetime as dt
import heapq
import random
from typing import Any, cast

from faker import Faker
from sqlalchemy import Table, func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from eqian.core.ids import make_resident_id
from eqian.demo.risk import hidden_risk
from eqian.organizations.models import Unit
from eqian.workforce.models import Employment, Person, Residence

MAX_PERSONS = 40_000
PERSONS_PER_POSITION = 3.0  # persons per position over the ~3 years of chains (measured ≈ 2.75, some margin)
MEAN_TENURE_DAYS = 400
MOVER_SHARE = 0.15  # of hires who are someone that left another unit
WINDOW_DAYS = 30
CHUNK = 2_000
# County-level region codes of the provinces Zhili's migrant workers mostly come from.
ORIGINS = (
    ("341221", 5),  # 安徽 阜阳 临泉县
    ("341222", 4),  # 安徽 阜阳 太和县
    ("341226", 3),  # 安徽 阜阳 颍上县
    ("341321", 2),  # 安徽 宿州 砀山县
    ("412724", 3),  # 河南 周口 太康县
    ("411522", 2),  # 河南 信阳 光山县
    ("411527", 2),  # 河南 信阳 淮滨县
    ("511321", 2),  # 四川 南充 南部县
    ("511725", 2),  # 四川 达州 渠县
    ("520524", 2),  # 贵州 毕节 织金县
    ("520521", 2),  # 贵州 毕节 大方县
    ("360731", 2),  # 江西 赣州 于都县
    ("360734", 1),  # 江西 赣州 寻乌县
    ("330502", 1),  # 浙江 湖州 吴兴区 (locals)
)
MOBILE_PREFIXES = ("130", "131", "132", "133", "135", "136", "137", "138", "139", "150", "151", "152",
                   "155", "157", "158", "159", "166", "176", "177", "178", "180", "181", "182", "183",
                   "186", "187", "188", "189", "191", "198", "199")  # fmt: skip


def _stays(rng: random.Random, first_day: dt.date, today: dt.date) -> list[tuple[dt.date, dt.date | None]]:
    """One position's chain of (hired_on, left_on) from before the window up to today."""
    out: list[tuple[dt.date, dt.date | None]] = []
    day = first_day
    while day <= today:
        tenure = max(20, int(rng.expovariate(1 / MEAN_TENURE_DAYS)))
        left = day + dt.timedelta(days=tenure)
        if left >= today:
            out.append((day, None))
            break
        out.append((day, left))
        day = left + dt.timedelta(days=rng.randint(1, 25))
    return out


def _registration(
    rng: random.Random, risk: float, hired: dt.date, today: dt.date
) -> tuple[str, dt.date | None, str | None, dt.date | None]:
    on_time = max(0.2, 0.97 - 1.1 * risk)
    late = min(0.5, 0.03 + 0.6 * risk)
    draw = rng.random()
    if draw < on_time:
        registered = hired + dt.timedelta(days=rng.randint(-3, WINDOW_DAYS))
    elif draw < on_time + late:
        registered = hired + dt.timedelta(days=rng.randint(WINDOW_DAYS + 1, 150))
    else:
        return "unregistered", None, None, None
    if registered > today:
        return "unregistered", None, None, None
    if rng.random() < 0.45:  # a residence permit (居住证) follows registration after half a year
        issued = registered + dt.timedelta(days=180)
        if issued <= today:
            expires = issued + dt.timedelta(days=365 * rng.randint(1, 3))
            return "permit_issued", registered, f"330502{rng.randrange(10**10):010d}", expires
    return "registered", registered, None, None


async def seed_workforce(session: AsyncSession, *, seed: int, today: dt.date) -> dict[str, int]:
    """Plan and insert persons, employments and residences for the existing units; no commit."""
    units = (
        await session.execute(
            select(Unit.id, Unit.employee_count).where(Unit.status == "active").order_by(Unit.id)
        )
    ).all()
    rng = random.Random(f"workforce:{seed}")
    fake = Faker("zh_CN")
    fake.seed_instance(seed)
    surnames = sorted({fake.last_name() for _ in range(400)})
    given = sorted({fake.first_name() for _ in range(3000)})
    regions = [code for code, weight in ORIGINS for _ in range(weight)]
    employees = sum(max(0, int(n)) for _, n in units) or 1
    factor = min(1.0, MAX_PERSONS / PERSONS_PER_POSITION / employees)
    window_start = today - dt.timedelta(days=730)

    # 1. every position's stays
    stays: list[tuple[dt.date, dt.date | None, int]] = []
    for unit_id, count in units:
        positions = max(1, round(max(0, int(count)) * factor))
        for _ in range(positions):
            first = window_start - dt.timedelta(days=rng.randint(0, 365))
            stays.extend((h, left, unit_id) for h, left in _stays(rng, first, today))
    stays.sort(key=lambda s: (s[0], s[2]))

    # 2. persons: a hire is a newcomer, or (sometimes) someone who left another unit before
    first_person = int(await session.scalar(select(func.coalesce(func.max(Person.id), 0))) or 0) + 1
    first_emp = int(await session.scalar(select(func.coalesce(func.max(Employment.id), 0))) or 0) + 1
    ids_used: set[str] = set(await session.scalars(select(Person.id_number)))
    phones_used: set[str] = set()
    persons: list[dict[str, Any]] = []
    employments: list[dict[str, Any]] = []
    latest: dict[int, tuple[dt.date, int]] = {}  # person id -> last hire and its unit
    leaving: list[tuple[dt.date, int]] = []  # heap of (left_on, person id)
    free: list[int] = []
    now = dt.datetime.combine(today, dt.time(2, 0), tzinfo=dt.UTC)
    for hired, left, unit_id in stays:
        while leaving and leaving[0][0] < hired:
            free.append(heapq.heappop(leaving)[1])
        if len(free) > 2000:
            free = free[-2000:]
        if free and rng.random() < MOVER_SHARE:
            person_id = free.pop(rng.randrange(len(free)))
        else:
            person_id = first_person + len(persons)
            while True:
                birth = today - dt.timedelta(days=rng.randint(18 * 365 + 5, 52 * 365))
                rid = make_resident_id(rng.choice(regions), birth, rng.randrange(1000))
                if rid not in ids_used:
                    ids_used.add(rid)
                    break
            while True:
                phone = rng.choice(MOBILE_PREFIXES) + f"{rng.randrange(10**8):08d}"
                if phone not in phones_used:
                    phones_used.add(phone)
                    break
            persons.append(
                {
                    "id": person_id,
                    "id_number": rid,
                    "name": rng.choice(surnames) + rng.choice(given),
                    "phone": phone,
                    "birth_date": birth,
                    "home_region": rid[:6],
                    "created_at": now,
                }
            )
        employments.append(
            {
                "id": first_emp + len(employments),
                "person_id": person_id,
                "unit_id": unit_id,
                "hired_on": hired,
                "left_on": left,
                "dormitory": "",
                "position": "",
                "created_at": now,
            }
        )
        latest[person_id] = (hired, unit_id)
        if left is not None:
            heapq.heappush(leaving, (left, person_id))

    # 3. registration, driven by the latest employer's hidden risk
    residences = []
    for person in persons:
        hired, unit_id = latest[person["id"]]
        status, registered, permit_no, expires = _registration(rng, hidden_risk(seed, unit_id), hired, today)
        residences.append(
            {
                "person_id": person["id"],
                "status": status,
                "registered_on": registered,
                "permit_no": permit_no,
                "permit_expires_on": expires,
                "updated_at": now,
            }
        )

    for table, rows in (
        (cast(Table, Person.__table__), persons),
        (cast(Table, Residence.__table__), residences),
        (cast(Table, Employment.__table__), employments),
    ):
        for start in range(0, len(rows), CHUNK):
            await session.execute(insert(table), rows[start : start + CHUNK])
    if session.get_bind().dialect.name == "postgresql":
        for name in ("workforce_persons", "workforce_employments"):
            await session.execute(
                text(
                    f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "  # noqa: S608 - fixed names
                    f"COALESCE((SELECT MAX(id) FROM {name}), 1), (SELECT MAX(id) FROM {name}) IS NOT NULL)"
                )
            )
    return {
        "persons": len(persons),
        "employments": len(employments),
        "departures": sum(1 for e in employments if e["left_on"] is not None),
        "registered": sum(1 for r in residences if r["status"] != "unregistered"),
        "rehires": len(employments) - len(persons),  # stays by people hired before
    }
