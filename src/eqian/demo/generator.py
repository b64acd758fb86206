"""The synthetic district: a believable 织里 (town) or 湖州 (city), the same every time for a seed.

The whole district is planned in memory first (pure, seeded ``random.Random`` and Faker, no global
random state), then written with bulk inserts and explicit ids, which is what makes 20,000 units
and their contacts a matter of seconds rather than minutes.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from faker import Faker
from sqlalchemy import Table, func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from eqian.core.accounts import Role, User
from eqian.core.db import Base, table_of
from eqian.core.ids import CREDIT_CODE_ALPHABET, make_credit_code
from eqian.core.passwords import hash_password
from eqian.demo import environment, names
from eqian.demo.activities import seed_activities
from eqian.demo.cockpit import seed_cockpit
from eqian.demo.environment import EnvironmentPlan
from eqian.demo.hazards import seed_hazards
from eqian.demo.incidents import seed_incidents
from eqian.demo.mediation import seed_mediation
from eqian.demo.messaging import seed_messaging
from eqian.demo.names import NameTemplate, StationPlace
from eqian.demo.requests import seed_requests
from eqian.demo.safety_index import seed_safety_index
from eqian.demo.workforce import seed_workforce
from eqian.mediation.models import MediationTeam
from eqian.organizations.categories import CATEGORIES
from eqian.organizations.models import (
    Bureau,
    Contact,
    JointZone,
    LiaisonAssignment,
    ServicePoint,
    Station,
    Unit,
    UnitCategory,
)

DomainSeed = Callable[..., Awaitable[dict[str, int]]]
# Each takes (session, *, seed, today), reads the units and users already in the session (and what
# the seeds before it wrote: mediation opens cases from the incidents, the index and the cockpit
# read everything), and returns its counts.
DOMAIN_SEEDS: tuple[DomainSeed, ...] = (
    seed_activities,
    seed_workforce,
    seed_hazards,
    seed_incidents,
    seed_mediation,
    seed_requests,
    seed_messaging,
    seed_safety_index,
    seed_cockpit,
)

Scale = Literal["town", "city"]
Row = dict[str, Any]

UNITS_BY_SCALE: dict[str, int] = {"town": 1_800, "city": 20_000}
CHUNK = 2_000
BUREAU_CODE = "zhili"
BUREAU_NAME = "湖州市公安局织里分局"
DEMO_STATION = "zhibei"  # 织北: the busiest station in Huzhou, where the articles' scenes happen
DEMO_TEAM = "平安大姐工作室"
LIAISON_UNITS = 40
SERVICE_POINT_SHARE = 0.70

# Employee head-count per category: (median, log-normal sigma, min, max). Zhili's garment trade is
# thousands of family workshops and a few hundred real factories, hence the long right tail.
EMPLOYEES: dict[str, tuple[float, float, int, int]] = {
    "garment": (22, 0.9, 8, 300),
    "property": (12, 0.6, 3, 80),
    "market": (40, 0.9, 6, 600),
    "hazchem": (25, 0.7, 5, 200),
    "finance": (15, 0.4, 6, 60),
    "education": (45, 0.6, 10, 200),
    "medical": (20, 1.0, 4, 900),
    "lodging": (8, 0.7, 2, 150),
    "logistics": (20, 0.9, 3, 400),
    "entertainment": (10, 0.7, 3, 120),
    "transport": (15, 0.9, 4, 300),
}
# Above-scale (规上) is a revenue threshold too, so some small-staffed traders qualify.
HIGH_REVENUE_CATEGORIES = frozenset({"garment", "market", "logistics", "hazchem", "transport"})
HIGH_REVENUE_SHARE = 0.08
BIG_STAFF = 100
SMALL_STAFF = 60


# Explicit ids go into these tables; PostgreSQL's sequences must be moved past them afterwards.
_ID_MODELS: tuple[type[Base], ...] = (
    Bureau,
    Station,
    ServicePoint,
    MediationTeam,
    Unit,
    Contact,
    User,
    *environment.ID_MODELS,
)
_ID_TABLES: tuple[Table, ...] = tuple(table_of(model) for model in _ID_MODELS)


@dataclass(frozen=True)
class SeedReport:
    units: int
    stations: int
    service_points: int
    contacts: int
    users: list[tuple[str, str, str]]  # (username, role, person and scope, for printing)
    # Eco-policing: smelters are among ``units``; the ledger is current up to ``anchor``.
    smelters: int = 0
    ledger_entries: int = 0  # production reports, stock counts, manifests and receipts
    eco_incidents: int = 0
    eco_patrols: int = 0
    anchor: dt.datetime | None = None  # 00:00 Asia/Shanghai of the day seeded for
    # The two smelters whose ledger hides dumping: for tests and demos, never printed by the CLI.
    dumping_unit_ids: tuple[int, ...] = ()
    extras: dict[str, int] = field(default_factory=dict)  # counts from the domain seeds, for printing


@dataclass
class _Plan:
    bureau: Row | None
    stations: list[Row] = field(default_factory=list)
    service_points: list[Row] = field(default_factory=list)
    teams: list[Row] = field(default_factory=list)
    units: list[Row] = field(default_factory=list)
    contacts: list[Row] = field(default_factory=list)
    users: list[Row] = field(default_factory=list)
    assignments: list[Row] = field(default_factory=list)
    report_users: list[tuple[str, str, str]] = field(default_factory=list)
    env: EnvironmentPlan | None = None


async def is_seeded(session: AsyncSession) -> bool:
    """True when the database already holds a district (any station)."""
    return (await session.execute(select(Station.id).limit(1))).first() is not None


async def seed_demo(
    session_factory: async_sessionmaker[AsyncSession],
    *,
    scale: Scale = "town",
    seed: int = 365,
    password: str,
    units: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    today: dt.date | None = None,
    domains: bool = True,
) -> SeedReport:
    """Create the demo district and one account per role (username = role), all with ``password``.

    ``units`` counts every unit, the 18 aluminium smelters of the eco-policing data among them.
    Their ledger runs up to the last full day before ``today`` (default: today in Asia/Shanghai);
    a seed and a day always give the same district.

    Raises ``RuntimeError("already seeded")`` when a station exists; the caller decides whether
    that is an error. Everything is written in one transaction.
    """
    if scale not in UNITS_BY_SCALE:
        raise ValueError(f"unknown scale: {scale!r}")
    n_units = UNITS_BY_SCALE[scale] if units is None else units
    if n_units <= environment.SMELTERS:
        smelters = environment.SMELTERS
        raise ValueError(f"units must be at least {smelters + 1} ({smelters} of them are aluminium smelters)")
    day = environment.local_today() if today is None else today

    extras: dict[str, int] = {}
    async with session_factory() as session:
        if await is_seeded(session):
            raise RuntimeError("already seeded")
        taken = await _taken_usernames(session)
        if taken:
            raise RuntimeError(f"demo accounts already exist: {', '.join(sorted(taken))}")
        # argon2 is deliberately slow; the demo accounts share one hash of the same password.
        password_hash = await asyncio.to_thread(hash_password, password)
        first_ids = await _first_free_ids(session)
        bureau_id = await session.scalar(select(Bureau.id).where(Bureau.code == BUREAU_CODE))
        now = dt.datetime.now(dt.UTC)
        builder = _Builder(
            seed=seed,
            scale=scale,
            n_units=n_units,
            first_ids=first_ids,
            bureau_id=bureau_id,
            password_hash=password_hash,
            now=now,
            today=day,
        )
        # Planning 20,000 units with Faker takes a few seconds of CPU; keep the event loop free.
        plan = await asyncio.to_thread(builder.build)

        await _insert_categories(session)
        if plan.bureau is not None:
            await session.execute(insert(table_of(Bureau)), [plan.bureau])
        await session.execute(insert(table_of(Station)), plan.stations)
        await session.execute(insert(table_of(ServicePoint)), plan.service_points)
        await session.execute(insert(table_of(MediationTeam)), plan.teams)
        env = plan.env
        if env is None:  # pragma: no cover - build() always plans it
            raise RuntimeError("the plan has no eco-policing data")
        await session.execute(insert(table_of(JointZone)), [env.zone])

        total = len(plan.units) + len(plan.contacts)
        done = 0
        if progress is not None:
            progress(done, total)
        for model, rows in ((Unit, plan.units), (Contact, plan.contacts)):
            for start in range(0, len(rows), CHUNK):
                chunk = rows[start : start + CHUNK]
                await session.execute(insert(table_of(model)), chunk)
                done += len(chunk)
                if progress is not None:
                    progress(done, total)

        await session.execute(insert(table_of(User)), plan.users)
        await session.execute(insert(table_of(LiaisonAssignment)), plan.assignments)
        await environment.insert_environment(session, env)
        # The domains that build on units seed themselves from what is now in the session.
        for seed_domain in DOMAIN_SEEDS if domains else ():
            extras.update(await seed_domain(session, seed=seed, today=day))
        if session.get_bind().dialect.name == "postgresql":
            await _advance_sequences(session)
        await session.commit()
        # Fresh statistics for the planner: without them the ledger's joins (manifests to their
        # receipts) run as nested loops over the whole year, seconds instead of milliseconds.
        await session.execute(text("ANALYZE"))
        await session.commit()

    return SeedReport(
        units=len(plan.units),
        stations=len(plan.stations),
        service_points=len(plan.service_points),
        contacts=len(plan.contacts),
        users=plan.report_users,
        smelters=len(env.units),
        ledger_entries=env.ledger_rows,
        eco_incidents=len(env.incidents),
        eco_patrols=len(env.patrols),
        anchor=env.anchor,
        dumping_unit_ids=env.dumping_unit_ids,
        extras=extras,
    )


async def _taken_usernames(session: AsyncSession) -> set[str]:
    result = await session.scalars(select(User.username).where(User.username.in_([r.value for r in Role])))
    return set(result)


async def _first_free_ids(session: AsyncSession) -> dict[str, int]:
    # Accounts or categories may exist before the district does (an admin created by hand), so
    # explicit ids start after whatever is there rather than at 1.
    first: dict[str, int] = {}
    for table in _ID_TABLES:
        current = await session.scalar(select(func.max(table.c.id)))
        first[table.name] = int(current or 0) + 1
    return first


async def _insert_categories(session: AsyncSession) -> None:
    existing = set(await session.scalars(select(UnitCategory.code)))
    rows = [
        {"code": c.code, "name_zh": c.name_zh, "name_en": c.name_en, "sort_order": i}
        for i, c in enumerate(CATEGORIES)
        if c.code not in existing
    ]
    if rows:
        await session.execute(insert(table_of(UnitCategory)), rows)


async def _advance_sequences(session: AsyncSession) -> None:
    for table in _ID_TABLES:
        name = table.name
        # COALESCE keeps setval valid on an empty table; its third argument false means "next is 1".
        await session.execute(
            text(
                f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "  # noqa: S608 - names from our models
                f"COALESCE((SELECT MAX(id) FROM {name}), 1), (SELECT MAX(id) FROM {name}) IS NOT NULL)"
            )
        )


def _apportion(total: int, weights: Sequence[float], minimum: int = 0) -> list[int]:
    """Split ``total`` in proportion to ``weights`` (largest remainder), each share at least ``minimum``
    when there is enough to go round, so rare categories still appear in a small district."""
    floor = minimum if total >= minimum * len(weights) else 0
    rest = total - floor * len(weights)
    weight_sum = sum(weights)
    quotas = [rest * w / weight_sum for w in weights]
    counts = [int(q) for q in quotas]
    by_remainder = sorted(range(len(weights)), key=lambda i: (counts[i] - quotas[i], i))
    for i in by_remainder[: rest - sum(counts)]:
        counts[i] += 1
    return [c + floor for c in counts]


class _Fields(dict[str, str]):
    """Template fields drawn only when a template asks for them, so unused fields cost no draws."""

    def __init__(self, fixed: dict[str, str], draw: Callable[[str], str]) -> None:
        super().__init__(fixed)
        self._draw = draw

    def __missing__(self, key: str) -> str:
        value = self[key] = self._draw(key)
        return value


def _fits(size: str, employees: int) -> bool:
    if size == names.BIG:
        return employees >= BIG_STAFF
    if size == names.SMALL:
        return employees < SMALL_STAFF
    return True


class _Builder:
    def __init__(
        self,
        *,
        seed: int,
        scale: Scale,
        n_units: int,
        first_ids: dict[str, int],
        bureau_id: int | None,
        password_hash: str,
        now: dt.datetime,
        today: dt.date,
    ) -> None:
        self.seed = seed
        self.today = today
        self.rng = random.Random(seed)
        self.fake = Faker("zh_CN")
        self.fake.seed_instance(seed)
        self.scale = scale
        self.n_units = n_units
        self.first_ids = first_ids
        self.bureau_id = bureau_id if bureau_id is not None else first_ids["bureaus"]
        self.new_bureau = bureau_id is None
        self.zone_id = first_ids["joint_zones"]
        self.password_hash = password_hash
        self.now = now
        self.places: tuple[StationPlace, ...] = (
            names.ZHILI_STATIONS if scale == "town" else names.ZHILI_STATIONS + names.HUZHOU_STATIONS
        )
        self.names_used: set[str] = set()
        self.codes_used: set[str] = set()
        self.phones_used: set[str] = set()
        self.landmarks: dict[str, list[NameTemplate]] = {k: list(v) for k, v in names.ZHILI_LANDMARKS.items()}
        self.station_ids: dict[str, int] = {}
        self.points_by_station: dict[int, list[Row]] = {}
        self.security_heads: dict[int, str] = {}  # unit id -> the head's name

    def build(self) -> _Plan:
        bureau = {"id": self.bureau_id, "code": BUREAU_CODE, "name": BUREAU_NAME}
        plan = _Plan(bureau=bureau if self.new_bureau else None)
        self._stations(plan)
        self._teams(plan)
        self._units(plan)
        self._environment(plan)
        self._accounts(plan)
        return plan

    # --- organisation -------------------------------------------------------------------------

    def _stations(self, plan: _Plan) -> None:
        station_id = self.first_ids["stations"]
        point_id = self.first_ids["service_points"]
        for place in self.places:
            plan.stations.append(
                {
                    "id": station_id,
                    "bureau_id": self.bureau_id,
                    "code": place.code,
                    "name": place.name,
                    "address": place.address,
                    "lat": place.lat,
                    "lng": place.lng,
                }
            )
            self.station_ids[place.code] = station_id
            points = self.points_by_station.setdefault(station_id, [])
            for name, dlat, dlng in place.service_points:
                row = {
                    "id": point_id,
                    "station_id": station_id,
                    "name": name,
                    "address": self._address(place),
                    "lat": round(place.lat + dlat, 6),
                    "lng": round(place.lng + dlng, 6),
                }
                plan.service_points.append(row)
                points.append(row)
                point_id += 1
            station_id += 1

    def _teams(self, plan: _Plan) -> None:
        for i, (name, kind, station_code) in enumerate(names.MEDIATION_TEAMS):
            plan.teams.append(
                {
                    "id": self.first_ids["mediation_teams"] + i,
                    "name": name,
                    "kind": kind,
                    "station_id": self.station_ids[station_code],
                }
            )

    # --- units and contacts ------------------------------------------------------------------

    def _environment(self, plan: _Plan) -> None:
        """The 乔溇 joint zone, the smelters (units too) and their ledger, eco incidents, patrols."""
        env = environment.plan_environment(
            environment.Context(
                seed=self.seed,
                today=self.today,
                first_ids=self.first_ids,
                first_unit_id=self.first_ids["units"] + len(plan.units),
                first_contact_id=self.first_ids["contacts"] + len(plan.contacts),
                places=self.places,
                station_ids=self.station_ids,
                points_by_station=self.points_by_station,
                credit_code=self._credit_code,
                mobile=self._mobile,
                person=self.fake.name,
                names_used=self.names_used,
            )
        )
        plan.units.extend(env.units)
        plan.contacts.extend(env.contacts)
        plan.env = env

    def _units(self, plan: _Plan) -> None:
        n_units = self.n_units - environment.SMELTERS  # the smelters are planned with the ledger
        categories = [c.code for c in CATEGORIES]
        if self.scale == "town":
            station_weights = [p.weight for p in self.places]
        else:
            zhili_sum = sum(p.weight for p in self.places if p.in_zhili)
            zhili_scale = names.ZHILI_CITY_WEIGHT / zhili_sum
            station_weights = [p.weight * zhili_scale if p.in_zhili else p.weight for p in self.places]
        slots: list[tuple[StationPlace, str]] = []
        for place, n_station in zip(self.places, _apportion(n_units, station_weights), strict=True):
            mix = names.ZHILI_MIX if place.in_zhili else names.HUZHOU_MIX
            shares = _apportion(n_station, [mix[c] for c in categories], minimum=1)
            for category, count in zip(categories, shares, strict=True):
                slots.extend([(place, category)] * count)
        # Shuffled so that ids, like a real registry's, do not run station by station.
        self.rng.shuffle(slots)

        unit_id = self.first_ids["units"]
        contact_id = self.first_ids["contacts"]
        for place, category in slots:
            unit = self._unit(unit_id, place, category)
            plan.units.append(unit)
            for contact in self._contacts(unit):
                contact["id"] = contact_id
                plan.contacts.append(contact)
                contact_id += 1
            unit_id += 1

    def _unit(self, unit_id: int, place: StationPlace, category: str) -> Row:
        rng = self.rng
        street = rng.choice(place.streets)
        median, sigma, low, high = EMPLOYEES[category]
        employees = min(high, max(low, round(rng.lognormvariate(math.log(median), sigma))))
        name, template = self._unit_name(place, category, street, employees)
        if template.size == names.BIG and employees < BIG_STAFF:
            employees = rng.randint(BIG_STAFF, max(BIG_STAFF, high))  # a landmark is never a workshop
        above_scale = employees >= BIG_STAFF or (
            category in HIGH_REVENUE_CATEGORIES and rng.random() < HIGH_REVENUE_SHARE
        )
        station_id = self.station_ids[place.code]
        points = self.points_by_station[station_id]
        lat, lng = self._position(place, points)
        roll = rng.random()
        status = "active" if roll < 0.93 else "suspended" if roll < 0.97 else "closed"
        point_id = None
        if points and rng.random() < SERVICE_POINT_SHARE:
            point_id = min(points, key=lambda p: _distance2(lat, lng, p["lat"], p["lng"]))["id"]
        joined = self.now - dt.timedelta(days=730 + rng.randrange(3 * 365), minutes=rng.randrange(24 * 60))
        address = f"湖州市{place.district}{place.locality}{street}{rng.randint(1, 1999)}号"
        if category == "garment" and rng.random() < 0.4:
            # Workshops rent floors in the industrial parks' buildings.
            address += f"{rng.randint(1, 24)}幢{rng.randint(1, 5)}楼"
        return {
            "id": unit_id,
            "name": name,
            "credit_code": self._credit_code(template.credit_head, place.region),
            "category_code": category,
            "station_id": station_id,
            "service_point_id": point_id,
            "address": address,
            "lat": lat,
            "lng": lng,
            "employee_count": employees,
            "above_scale": above_scale,
            "status": status,
            "joint_zone_id": self.zone_id if environment.in_zone(lat, lng) else None,
            "created_at": joined,
            "updated_at": joined,
        }

    def _contacts(self, unit: Row) -> list[Row]:
        rng = self.rng
        # Bigger firms appoint more safety advisors (the 东尼电子 centre chose twelve).
        weights = (2, 5, 3) if unit["employee_count"] >= 100 else (5, 4, 1)
        n_advisors = rng.choices((0, 1, 2), weights=weights)[0]
        head = self.fake.name()
        self.security_heads[unit["id"]] = head
        people = [(head, "security_head")] + [(self.fake.name(), "safety_advisor") for _ in range(n_advisors)]
        return [
            {
                "unit_id": unit["id"],
                "name": person,
                "role": role,
                "phone": self._mobile(),
                "created_at": unit["created_at"],
            }
            for person, role in people
        ]

    def _unit_name(
        self, place: StationPlace, category: str, street: str, employees: int
    ) -> tuple[str, NameTemplate]:
        if place.in_zhili:
            pool = self.landmarks.get(category)
            while pool:
                landmark = pool.pop(0)
                if landmark.pattern not in self.names_used:
                    self.names_used.add(landmark.pattern)
                    return landmark.pattern, landmark
        fitting = [t for t in names.UNIT_TEMPLATES[category] if _fits(t.size, employees)]
        fields = {"p": place.short, "t": place.locality, "s": street}
        # When the names that fit the unit's size run out, any name of its trade will do.
        for templates in (fitting, names.UNIT_TEMPLATES[category]):
            for _ in range(40):
                template = self.rng.choice(templates)
                name = template.pattern.format_map(_Fields(fields, lambda key: self._field(key, place)))
                if name not in self.names_used:
                    self.names_used.add(name)
                    return name, template
        for branch in range(2, 10_000):
            candidate = f"{name}（{branch}）"
            if candidate not in self.names_used:
                self.names_used.add(candidate)
                return candidate, template
        raise RuntimeError("unit name space exhausted")  # pragma: no cover - 10,000 units of one name

    def _field(self, key: str, place: StationPlace) -> str:
        rng = self.rng
        match key:
            case "a":
                return rng.choice(place.areas)
            case "b":
                return self._brand(names.KID_HEADS, names.KID_TAILS)
            case "g":
                return self._brand(names.BIZ_HEADS, names.BIZ_TAILS)
            case "e":
                return rng.choice(names.ESTATE_WORDS) + rng.choice(names.ESTATE_SUFFIXES)
            case "k":
                return rng.choice(names.BANKS)
            case "c":
                return rng.choice(names.COURIERS)
            case "h":
                return rng.choice(names.HOTEL_CHAINS)
            case "f":
                return rng.choice(names.FUEL_BRANDS)
            case "n":
                return rng.choice(names.SURNAMES)
        raise KeyError(key)

    def _brand(self, heads: Sequence[str], tails: Sequence[str]) -> str:
        rng = self.rng
        head, tail = rng.choice(heads), rng.choice(tails)
        roll = rng.random()
        if roll < 0.25 and head != tail:
            return head + head + tail  # 贝贝乐, 鑫鑫隆: doubled syllables are the house style
        if roll < 0.45:
            return head + rng.choice(heads) + tail
        return head + tail

    def _credit_code(self, head: str, region: str) -> str:
        while True:
            body = "".join(self.rng.choices(CREDIT_CODE_ALPHABET, k=9))
            code = make_credit_code(head + region + body)
            if code not in self.codes_used:
                self.codes_used.add(code)
                return code

    def _mobile(self) -> str:
        while True:
            phone = self.rng.choice(names.MOBILE_PREFIXES) + f"{self.rng.randrange(10**8):08d}"
            if phone not in self.phones_used:
                self.phones_used.add(phone)
                return phone

    def _address(self, place: StationPlace) -> str:
        street = self.rng.choice(place.streets)
        return f"湖州市{place.district}{place.locality}{street}{self.rng.randint(1, 1999)}号"

    def _position(self, place: StationPlace, points: list[Row]) -> tuple[float, float]:
        rng = self.rng
        # Half the units cluster around service points: those sit where the industrial parks are.
        if points and rng.random() < 0.5:
            anchor = rng.choice(points)
            centre_lat, centre_lng, spread = anchor["lat"], anchor["lng"], place.spread / 2
        else:
            centre_lat, centre_lng, spread = place.lat, place.lng, place.spread
        if place.in_zhili:
            lat_min, lat_max, lng_min, lng_max = names.ZHILI_BOX
        else:
            reach = 3 * place.spread
            lat_min, lat_max, lng_min, lng_max = (
                place.lat - reach,
                place.lat + reach,
                place.lng - reach,
                place.lng + reach,
            )
        lng_spread = spread / math.cos(math.radians(centre_lat))  # keep the scatter round on the ground
        # Redraw rather than clamp, so that stray draws do not pile up along the town's edge.
        for _ in range(20):
            lat, lng = rng.gauss(centre_lat, spread), rng.gauss(centre_lng, lng_spread)
            if lat_min <= lat <= lat_max and lng_min <= lng <= lng_max:
                break
        else:
            lat, lng = centre_lat, centre_lng
        return round(lat, 6), round(lng, 6)

    # --- accounts ----------------------------------------------------------------------------

    def _accounts(self, plan: _Plan) -> None:
        station_id = self.station_ids[DEMO_STATION]
        station_name = next(p.name for p in self.places if p.code == DEMO_STATION)
        station_units = [u for u in plan.units if u["station_id"] == station_id]

        # The demo accounts should meet in one place: the busiest 织北 service point, a garment
        # firm attached to it, and that firm among the liaison officer's units.
        attached: dict[int, int] = {}
        for u in station_units:
            if u["service_point_id"] is not None:
                attached[u["service_point_id"]] = attached.get(u["service_point_id"], 0) + 1
        points = self.points_by_station[station_id]
        point = max(points, key=lambda p: (attached.get(p["id"], 0), -p["id"]))
        unit = _first(
            [
                u
                for u in station_units
                if u["category_code"] == "garment"
                and u["status"] == "active"
                and u["service_point_id"] == point["id"]
            ],
            [u for u in station_units if u["category_code"] == "garment" and u["status"] == "active"],
            [u for u in station_units if u["status"] == "active"],
            station_units,
            plan.units,
        )
        others = [u["id"] for u in station_units if u["id"] != unit["id"]]
        liaison_units = sorted(
            ([unit["id"]] if unit["station_id"] == station_id else [])
            + self.rng.sample(others, min(LIAISON_UNITS - 1, len(others)))
        )
        team = next(t for t in plan.teams if t["name"] == DEMO_TEAM)

        admin, officer, liaison, mediator, staff, partner = (
            self.fake.name(),
            self.fake.name(),
            self.fake.name(),
            # 平安大姐 are women entrepreneurs; zh_CN's name_female() does not know that.
            self.fake.last_name() + self.fake.first_name_female(),
            self.fake.name(),
            self.fake.name(),
        )
        if plan.env is None:  # pragma: no cover - build() plans it before the accounts
            raise RuntimeError("the plan has no eco-policing data")
        zone = plan.env.zone
        head = self.security_heads[unit["id"]]
        accounts: list[tuple[Role, str, dict[str, int], str]] = [
            (Role.BUREAU_ADMIN, f"{admin}（织里分局主战中心）", {}, f"{admin} · {BUREAU_NAME} · 全部辖区"),
            (
                Role.STATION_OFFICER,
                f"{officer}（{station_name}）",
                {"station_id": station_id},
                f"{officer} · {station_name}",
            ),
            (
                Role.LIAISON_OFFICER,
                f"{liaison}（{station_name}企业警长）",
                {"station_id": station_id},
                f"{liaison} · {station_name} · 联系单位 {len(liaison_units)} 家",
            ),
            (
                Role.UNIT_SECURITY,
                _clip(f"{head}（{unit['name']}）"),
                {"unit_id": unit["id"]},
                f"{head} · {unit['name']}",
            ),
            (
                Role.MEDIATOR,
                f"{mediator}（{DEMO_TEAM}）",
                {"team_id": team["id"]},
                f"{mediator} · {DEMO_TEAM}",
            ),
            (
                Role.SERVICE_POINT_STAFF,
                _clip(f"{staff}（{point['name']}）"),
                {"service_point_id": point["id"]},
                f"{staff} · {point['name']}",
            ),
            (
                Role.PARTNER_OFFICER,
                f"{partner}（吴江分局·乔溇联勤）",
                {"zone_id": zone["id"]},
                f"{partner} · {zone['partner_agency']} · {zone['name']}",
            ),
        ]
        user_id = self.first_ids["users"]
        for i, (role, display, anchors, scope) in enumerate(accounts):
            plan.users.append(
                {
                    "id": user_id + i,
                    "username": role.value,
                    "display_name": display,
                    "password_hash": self.password_hash,
                    "role": role.value,
                    "station_id": anchors.get("station_id"),
                    "unit_id": anchors.get("unit_id"),
                    "service_point_id": anchors.get("service_point_id"),
                    "team_id": anchors.get("team_id"),
                    "zone_id": anchors.get("zone_id"),
                    "is_active": True,
                    "failed_logins": 0,
                    "created_at": self.now,
                    "password_changed_at": self.now,
                }
            )
            plan.report_users.append((role.value, role.value, scope))
        liaison_id = user_id + [a[0] for a in accounts].index(Role.LIAISON_OFFICER)
        plan.assignments = [
            {"unit_id": uid, "officer_id": liaison_id, "assigned_at": self.now} for uid in liaison_units
        ]


def _first(*candidates: list[Row]) -> Row:
    for rows in candidates:
        if rows:
            return rows[0]
    raise ValueError("no unit to anchor the unit_security account")


def _clip(display_name: str, limit: int = 64) -> str:
    return display_name if len(display_name) <= limit else display_name[: limit - 1] + "…"


def _distance2(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    # Squared equirectangular distance: enough to rank nearby points, no trigonometry per pair.
    dlng = (lng1 - lng2) * 0.857  # cos(31°), Huzhou's latitude
    return (lat1 - lat2) ** 2 + dlng**2
