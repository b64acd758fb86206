"""Eco-policing demo data: the 乔溇 joint zone, 18 aluminium smelters and a year of their ash ledger.

Planned in memory like the rest of the district, from its own seeded ``random.Random``, and
anchored on a day: ``today`` (Asia/Shanghai; the caller passes it, so a seed and a day always give
the same data). The ledger runs from the first of the month a year before ``today`` up to the last
full day before it; the *anchor* is ``today`` at 00:00 local time, the moment the checks are meant
to run at.

How the ledger is made to balance, so that the checks find exactly what was hidden in it:

- every smelter's ash stock is simulated day by day: in the morning a truck may leave with most of
  the stock (08:30–15:30 local), through the day the processes make ash (production × coefficient,
  give or take 2 % a day), and the evening count (20:00 local) sees the result;
- stock is counted every Sunday, on the last day of every month and on the last full day, each
  reading within 50 kg of the simulated stock. A month's balance therefore runs from the count of
  the previous month's last evening to that of its own, exactly the days it produced;
- every manifest is confirmed by its facility 1–30 hours after shipping, before the anchor, with a
  weighbridge reading within ±0.6 % of the shipped weight (the alert tolerance is 2 %);
- two smelters dump: over the last 56–72 days they ship only 55–65 % of the ash they make, and
  their stock counts (honest about what is left in the yard) do not grow to match. Their months
  from then on are red, every other smelter's month stays well within 2 % of its expected ash.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from eqian.core.db import Base, table_of
from eqian.core.geo import point_in_polygon
from eqian.demo import names
from eqian.demo.names import ProcessKind, StationPlace
from eqian.environment.models import (
    Carrier,
    DisposalFacility,
    EcoIncident,
    EcoPatrol,
    Manifest,
    ManifestReceipt,
    ProductionReport,
    SmelterProcess,
    StockCount,
)
from eqian.organizations.models import JointZone

Row = dict[str, Any]
LOCAL_TZ = ZoneInfo("Asia/Shanghai")

SMELTERS = 18
DUMPERS = 2
SMELTERS_IN_ZONE = 3
ECO_INCIDENTS = 60
PATROLS = 150
CHUNK = 2_000

COUNT_TIME = dt.time(20, 0)  # evening stock count, after the day's shipments and melts
SHIP_FROM, SHIP_UNTIL = 8 * 60 + 30, 15 * 60 + 30  # shipping hours, minutes after local midnight
CONFIRM_HOURS = (1.0, 30.0)
RECEIPT_SPREAD = 0.006  # weighbridge reading vs shipped weight
COUNT_NOISE_T = 0.05
TRUCK_T = 30.0  # what one hazardous-goods truck takes
MIN_LOAD_T = 2.0
MAX_DAYS_BETWEEN_SHIPMENTS = 6
DUMP_DAYS = (56, 72)  # the dumping started this many days before the anchor
DUMP_SHARE = (0.35, 0.45)  # share of the ash made that never reaches a manifest
# A month only partly in the dumping window is either clearly red (this share of its days or more)
# or the window starts on its first day: never a borderline amber month.
DUMP_MONTH_SHARE = 0.4
REGION = names.WUXING

# Tables written here with explicit ids; the generator moves PostgreSQL's sequences past them.
ID_MODELS: tuple[type[Base], ...] = (
    JointZone,
    DisposalFacility,
    Carrier,
    SmelterProcess,
    ProductionReport,
    StockCount,
    Manifest,
    ManifestReceipt,
    EcoIncident,
    EcoPatrol,
)


def local_today() -> dt.date:
    """Today in Asia/Shanghai: what ``eqian demo seed`` anchors the ledger on."""
    return dt.datetime.now(LOCAL_TZ).date()


def anchor_of(today: dt.date) -> dt.datetime:
    """``today`` at 00:00 Asia/Shanghai, as aware UTC: the moment the demo data is current at."""
    return _at(today, dt.time(0))


def _at(day: dt.date, time: dt.time) -> dt.datetime:
    return dt.datetime.combine(day, time, LOCAL_TZ).astimezone(dt.UTC)


def _month_end(day: dt.date) -> dt.date:
    following = dt.date(day.year + day.month // 12, day.month % 12 + 1, 1)
    return following - dt.timedelta(days=1)


def in_zone(lat: float, lng: float) -> bool:
    return point_in_polygon((lat, lng), names.JOINT_ZONE_POLYGON)


@dataclass(frozen=True)
class Context:
    """What the district generator has already decided and the eco-policing data builds on."""

    seed: int
    today: dt.date
    first_ids: Mapping[str, int]  # table name -> first free id
    first_unit_id: int
    first_contact_id: int
    places: Sequence[StationPlace]  # the Zhili stations
    station_ids: Mapping[str, int]  # station code -> id
    points_by_station: Mapping[int, Sequence[Row]]
    credit_code: Callable[[str, str], str]  # (credit code head, region) -> a fresh valid code
    mobile: Callable[[], str]
    person: Callable[[], str]
    names_used: set[str]


@dataclass
class EnvironmentPlan:
    anchor: dt.datetime
    zone: Row
    host_station_id: int
    units: list[Row] = field(default_factory=list)
    contacts: list[Row] = field(default_factory=list)
    facilities: list[Row] = field(default_factory=list)
    carriers: list[Row] = field(default_factory=list)
    processes: list[Row] = field(default_factory=list)
    production: list[Row] = field(default_factory=list)
    stock_counts: list[Row] = field(default_factory=list)
    manifests: list[Row] = field(default_factory=list)
    receipts: list[Row] = field(default_factory=list)
    incidents: list[Row] = field(default_factory=list)
    patrols: list[Row] = field(default_factory=list)
    dumping_unit_ids: tuple[int, ...] = ()
    dumping_since: dt.date | None = None

    @property
    def ledger_rows(self) -> int:
        return len(self.production) + len(self.stock_counts) + len(self.manifests) + len(self.receipts)

    def tables(self) -> list[tuple[type[Base], list[Row]]]:
        """The rows this module inserts itself (zone, units and contacts go in with the district)."""
        return [
            (DisposalFacility, self.facilities),
            (Carrier, self.carriers),
            (SmelterProcess, self.processes),
            (ProductionReport, self.production),
            (StockCount, self.stock_counts),
            (Manifest, self.manifests),
            (ManifestReceipt, self.receipts),
            (EcoIncident, self.incidents),
            (EcoPatrol, self.patrols),
        ]


async def insert_environment(session: AsyncSession, plan: EnvironmentPlan) -> None:
    """Bulk-insert the registry, the ledger, eco incidents and patrols (after units and users)."""
    for model, rows in plan.tables():
        table = table_of(model)
        for start in range(0, len(rows), CHUNK):
            await session.execute(insert(table), rows[start : start + CHUNK])


def plan_environment(ctx: Context) -> EnvironmentPlan:
    return _Planner(ctx).build()


@dataclass
class _Process:
    id: int
    kind: ProcessKind
    coefficient: float
    tonnes_per_day: float


@dataclass
class _Smelter:
    unit: Row
    processes: list[_Process]
    facility_ids: tuple[int, int]  # usual and occasional destination
    carrier_id: int
    shutdown: frozenset[dt.date]
    dump_share: float = 0.0


class _Planner:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        # Its own stream, so the rest of the district does not shift when this part changes.
        self.rng = random.Random(ctx.seed * 1_000_003 + 365)
        self.today = ctx.today
        self.anchor = anchor_of(ctx.today)
        self.last_day = ctx.today - dt.timedelta(days=1)
        year_ago = ctx.today - dt.timedelta(days=365)
        self.first_day = year_ago.replace(day=1)
        self.zhili = [p for p in ctx.places if p.in_zhili]
        host = max(self.zhili, key=lambda p: p.lat)  # the joint station's host: 织北, the northernmost
        self.host_station_id = ctx.station_ids[host.code]
        self.host_place = host
        self.plates: dict[int, list[str]] = {}
        self.days: list[dt.date] = []
        self.month_ends: set[dt.date] = set()
        self.reported_at: dict[dt.date, dt.datetime] = {}
        self.facility_rows: dict[int, Row] = {}

    def build(self) -> EnvironmentPlan:
        zone = {
            "id": self.ctx.first_ids["joint_zones"],
            "code": names.JOINT_ZONE_CODE,
            "name": names.JOINT_ZONE_NAME,
            "partner_agency": names.PARTNER_AGENCY,
            "station_id": self.host_station_id,
            "polygon": [[lat, lng] for lat, lng in names.JOINT_ZONE_POLYGON],
        }
        plan = EnvironmentPlan(anchor=self.anchor, zone=zone, host_station_id=self.host_station_id)
        self._references(plan)
        smelters = self._smelters(plan)
        self._ledger(plan, smelters)
        self._incidents(plan)
        self._patrols(plan)
        return plan

    # --- registry ----------------------------------------------------------------------------

    def _references(self, plan: EnvironmentPlan) -> None:
        rng = self.rng
        for i, f in enumerate(names.DISPOSAL_FACILITIES):
            row: Row = {
                "id": self.ctx.first_ids["env_facilities"] + i,
                "name": f.name,
                "licence_no": f.licence_no,
                "address": f.address,
                "in_district": f.in_district,
                "licensed_capacity_t_per_year": float(f.capacity_t_per_year),
                "lat": f.lat,
                "lng": f.lng,
            }
            plan.facilities.append(row)
            self.facility_rows[row["id"]] = row
        for i, (name, licence, prefix) in enumerate(names.CARRIERS):
            carrier_id = self.ctx.first_ids["env_carriers"] + i
            plan.carriers.append({"id": carrier_id, "name": name, "licence_no": licence})
            fleet: set[str] = set()
            size = rng.randint(3, 6)
            while len(fleet) < size:
                tail = "".join(rng.choices("0123456789", k=4))
                fleet.add(f"{prefix}{rng.choice(names.PLATE_LETTERS)}{tail}")
            self.plates[carrier_id] = sorted(fleet)

    def _smelters(self, plan: EnvironmentPlan) -> list[_Smelter]:
        rng = self.rng
        ctx = self.ctx
        positions = [(*self._zone_point(max_lat=30.922), True) for _ in range(SMELTERS_IN_ZONE)]
        for _ in range(SMELTERS - SMELTERS_IN_ZONE):
            _, lat, lng = rng.choice(names.SMELTER_CLUSTERS)
            positions.append((*self._scatter(lat, lng, 0.004), False))
        rng.shuffle(positions)

        smelters: list[_Smelter] = []
        process_id = ctx.first_ids["env_smelter_processes"]
        contact_id = ctx.first_contact_id
        for i, (lat, lng, zoned) in enumerate(positions):
            unit_id = ctx.first_unit_id + i
            place = self.host_place if zoned else self._nearest_station(lat, lng)
            station_id = ctx.station_ids[place.code]
            name, template = self._name(place)
            employees = rng.randint(100, 260) if template.size == names.BIG else rng.randint(25, 140)
            street = rng.choice(names.JOINT_ZONE_STREETS if zoned else place.streets)
            joined = self.anchor - dt.timedelta(
                days=rng.randint(4 * 365, 15 * 365), minutes=rng.randrange(1440)
            )
            # Attached to the station's nearest service point when one is close (not out by the lake).
            point_id = None
            points = ctx.points_by_station.get(station_id, ())
            if points and not zoned and rng.random() < 0.6:
                nearest = min(points, key=lambda p: (p["lat"] - lat) ** 2 + (p["lng"] - lng) ** 2)
                if (nearest["lat"] - lat) ** 2 + (nearest["lng"] - lng) ** 2 < 0.02**2:
                    point_id = nearest["id"]
            unit = {
                "id": unit_id,
                "name": name,
                "credit_code": ctx.credit_code(template.credit_head, REGION),
                "category_code": "hazchem",
                "station_id": station_id,
                "service_point_id": point_id,
                "address": f"湖州市吴兴区织里镇{street}{rng.randint(1, 999)}号",
                "lat": lat,
                "lng": lng,
                "employee_count": employees,
                "above_scale": employees >= 100 or rng.random() < 0.7,  # aluminium turnover is large
                "status": "active",
                "joint_zone_id": plan.zone["id"] if in_zone(lat, lng) else None,
                "created_at": joined,
                "updated_at": joined,
            }
            plan.units.append(unit)
            for person, role in ((ctx.person(), "security_head"), (ctx.person(), "safety_advisor")):
                plan.contacts.append(
                    {
                        "id": contact_id,
                        "unit_id": unit_id,
                        "name": person,
                        "role": role,
                        "phone": ctx.mobile(),
                        "created_at": joined,
                    }
                )
                contact_id += 1

            kinds = [
                names.MELTING,
                *rng.sample(names.SMELTER_PROCESSES, rng.choices((0, 1, 2), (2, 5, 3))[0]),
            ]
            processes = []
            for kind in kinds:
                process = _Process(
                    id=process_id,
                    kind=kind,
                    coefficient=round(rng.uniform(*kind.coefficient), 1),
                    tonnes_per_day=rng.uniform(*kind.tonnes_per_day),
                )
                processes.append(process)
                plan.processes.append(
                    {
                        "id": process_id,
                        "unit_id": unit_id,
                        "name": kind.name,
                        "coefficient_kg_per_t": process.coefficient,
                        "active": True,
                        "created_at": joined,
                    }
                )
                process_id += 1
            smelters.append(
                _Smelter(
                    unit=unit,
                    processes=processes,
                    facility_ids=(0, 0),
                    carrier_id=rng.choice([c["id"] for c in plan.carriers]),
                    shutdown=self._shutdown(),
                )
            )
        self._destinations(plan, smelters)

        # One dumper inside the joint zone (the partner agency sees it), one in the town.
        inside = [s for s in smelters if s.unit["joint_zone_id"] is not None]
        outside = [s for s in smelters if s.unit["joint_zone_id"] is None]
        dumpers = [rng.choice(inside), rng.choice(outside)][:DUMPERS]
        for s in dumpers:
            s.dump_share = rng.uniform(*DUMP_SHARE)
        plan.dumping_unit_ids = tuple(sorted(s.unit["id"] for s in dumpers))
        return smelters

    def _destinations(self, plan: EnvironmentPlan, smelters: list[_Smelter]) -> None:
        """Each smelter's usual facility, spread so every facility stays well within its licence."""
        load = {f["id"]: 0.0 for f in plan.facilities}
        capacity = {f["id"]: f["licensed_capacity_t_per_year"] for f in plan.facilities}
        for s in sorted(smelters, key=lambda s: -_daily_ash(s)):
            usual = min(load, key=lambda fid: ((load[fid] + _daily_ash(s) * 365) / capacity[fid], fid))
            load[usual] += _daily_ash(s) * 365
            other = self.rng.choice([fid for fid in load if fid != usual])
            s.facility_ids = (usual, other)

    def _shutdown(self) -> frozenset[dt.date]:
        """The Spring Festival week (staggered by a day or two between smelters)."""
        days: set[dt.date] = set()
        shift = self.rng.randint(-2, 1)
        for text in names.SPRING_FESTIVALS:
            festival = dt.date.fromisoformat(text)
            days.update(festival + dt.timedelta(days=shift + k) for k in range(-1, 7))
        return frozenset(days)

    def _name(self, place: StationPlace) -> tuple[str, names.NameTemplate]:
        rng = self.rng
        for _ in range(200):
            template = rng.choice(names.SMELTER_TEMPLATES)
            brand = rng.choice(names.BIZ_HEADS) + rng.choice(names.BIZ_TAILS)
            candidate = template.pattern.format(g=brand, p=place.short)
            if candidate not in self.ctx.names_used:
                self.ctx.names_used.add(candidate)
                return candidate, template
        raise RuntimeError("smelter name space exhausted")  # pragma: no cover - 200 draws of ~5,000

    def _nearest_station(self, lat: float, lng: float) -> StationPlace:
        return min(self.zhili, key=lambda p: (p.lat - lat) ** 2 + ((p.lng - lng) * 0.857) ** 2)

    def _scatter(self, lat: float, lng: float, spread: float) -> tuple[float, float]:
        lat_min, lat_max, lng_min, lng_max = names.ZHILI_BOX
        for _ in range(50):
            p_lat = self.rng.gauss(lat, spread)
            p_lng = self.rng.gauss(lng, spread / math.cos(math.radians(lat)))
            if lat_min <= p_lat <= lat_max and lng_min <= p_lng <= lng_max and not in_zone(p_lat, p_lng):
                return round(p_lat, 6), round(p_lng, 6)
        return lat, lng

    def _zone_point(self, *, min_lat: float = 0.0, max_lat: float = 90.0) -> tuple[float, float]:
        lats = [p[0] for p in names.JOINT_ZONE_POLYGON]
        lngs = [p[1] for p in names.JOINT_ZONE_POLYGON]
        lo, hi = max(min(lats), min_lat), min(max(lats), max_lat)
        while True:
            lat = round(self.rng.uniform(lo, hi), 6)
            lng = round(self.rng.uniform(min(lngs), max(lngs)), 6)
            if in_zone(lat, lng):
                return lat, lng

    def _near_zone_point(self) -> tuple[float, float]:
        """Between the town and the zone: fields, village roads and the lake's inlets."""
        while True:
            lat = round(self.rng.uniform(30.875, 30.905), 6)
            lng = round(self.rng.uniform(120.255, 120.320), 6)
            if not in_zone(lat, lng):
                return lat, lng

    # --- the ledger --------------------------------------------------------------------------

    def _dumping_since(self) -> dt.date:
        """56–72 days before the anchor, never leaving a borderline month at the window's start."""
        candidates = []
        for back in range(DUMP_DAYS[0], DUMP_DAYS[1] + 1):
            day = self.today - dt.timedelta(days=back)
            month_days = _month_end(day).day
            share = (month_days - day.day + 1) / month_days
            if day.day == 1 or share >= DUMP_MONTH_SHARE:
                candidates.append(day)
        return self.rng.choice(candidates)

    def _ledger(self, plan: EnvironmentPlan, smelters: list[_Smelter]) -> None:
        since = self._dumping_since()
        plan.dumping_since = since
        self.days = [
            self.first_day + dt.timedelta(days=k) for k in range((self.last_day - self.first_day).days + 1)
        ]
        self.month_ends = {day for day in self.days if day == _month_end(day)}
        self.reported_at = {day: _at(day, dt.time(20, 30)) for day in self.days}  # the day's report
        for s in smelters:
            self._simulate(plan, s, since)
        self._number(plan)

    def _simulate(self, plan: EnvironmentPlan, s: _Smelter, dumping_since: dt.date) -> None:
        rng = self.rng
        days = self.days
        unit_id = s.unit["id"]
        daily = _daily_ash(s)
        threshold = max(4.0, daily * rng.uniform(2.5, 4.5))
        stock = rng.uniform(2.0, 6.0)
        last_shipped = days[0] - dt.timedelta(days=rng.randint(0, 3))
        self._count(plan, unit_id, days[0] - dt.timedelta(days=1), stock, "期初盘点")
        for day in days:
            # Morning: a truck takes most of what the yard holds.
            waited = (day - last_shipped).days
            if stock >= threshold or (waited >= MAX_DAYS_BETWEEN_SHIPMENTS and stock >= MIN_LOAD_T + 1):
                load = round(min(stock - rng.uniform(0.2, 0.8), TRUCK_T), 2)
                if load >= MIN_LOAD_T:
                    self._ship(plan, s, day, load)
                    stock -= load
                    last_shipped = day
            # The day's melts.
            made = 0.0
            if day not in s.shutdown:
                season = 0.92 if day.month in (7, 8) else 1.0  # summer heat slows the furnaces
                weekday = 0.85 if day.weekday() == 6 else 1.0
                for p in s.processes:
                    if rng.random() < 0.015:  # a line down for maintenance
                        continue
                    tonnes = round(max(0.3, p.tonnes_per_day * season * weekday * rng.gauss(1.0, 0.07)), 2)
                    plan.production.append(
                        {
                            "unit_id": unit_id,
                            "process_id": p.id,
                            "produced_on": day,
                            "aluminium_t": tonnes,
                            "supersedes_id": None,
                            "entered_by": None,
                            "created_at": self.reported_at[day],
                            "note": "",
                        }
                    )
                    made += tonnes * p.coefficient / 1000
            made *= rng.gauss(1.0, 0.02)  # the coefficient is an average, not a law
            if s.dump_share and day >= dumping_since:
                made *= 1 - s.dump_share  # the rest leaves at night, on no manifest
            stock += made
            # Evening: the count.
            if day.weekday() == 6 or day in self.month_ends or day == self.last_day:
                note = "月末盘点" if day in self.month_ends else "周盘点"
                self._count(plan, unit_id, day, stock, note)

    def _count(self, plan: EnvironmentPlan, unit_id: int, day: dt.date, stock: float, note: str) -> None:
        noise = self.rng.uniform(-1, 1) * min(COUNT_NOISE_T, stock * 0.01)
        at = _at(day, COUNT_TIME)
        plan.stock_counts.append(
            {
                "unit_id": unit_id,
                "counted_at": at,
                "ash_t": round(max(0.0, stock + noise), 2),
                "supersedes_id": None,
                "entered_by": None,
                "created_at": at,
                "note": note,
            }
        )

    def _ship(self, plan: EnvironmentPlan, s: _Smelter, day: dt.date, tonnes: float) -> None:
        rng = self.rng
        minute = rng.randint(SHIP_FROM, SHIP_UNTIL)
        shipped_at = _at(day, dt.time(minute // 60, minute % 60))
        usual, other = s.facility_ids
        facility_id = usual if rng.random() < 0.8 else other
        carrier_id = s.carrier_id if rng.random() < 0.85 else rng.choice(sorted(self.plates))
        plan.manifests.append(
            {
                "unit_id": s.unit["id"],
                "manifest_no": "",  # numbered in shipping order once every smelter is planned
                "shipped_at": shipped_at,
                "shipped_t": tonnes,
                "carrier_id": carrier_id,
                "vehicle_plate": rng.choice(self.plates[carrier_id]),
                "facility_id": facility_id,
                "supersedes_id": None,
                "entered_by": None,
                "created_at": shipped_at,
                "note": "",
            }
        )
        facility = self.facility_rows[facility_id]
        low, high = CONFIRM_HOURS
        if not facility["in_district"]:
            low = 4.0  # a hundred kilometres and more to the weighbridge
        # Confirmed before the anchor: an unconfirmed manifest counts as missing ash in its month.
        high = min(high, (self.anchor - shipped_at).total_seconds() / 3600 - 0.25)
        low = min(low, high)
        received_at = shipped_at + dt.timedelta(hours=rng.uniform(low, high))
        received_at = received_at.replace(second=0, microsecond=0)
        received = round(tonnes * (1 + rng.uniform(-RECEIPT_SPREAD, RECEIPT_SPREAD)), 2)
        plan.receipts.append(
            {
                "manifest_no": "",
                "unit_id": s.unit["id"],
                "received_at": received_at,
                "received_t": received,
                "supersedes_id": None,
                "entered_by": None,
                "created_at": received_at,
                "note": "",
            }
        )

    def _number(self, plan: EnvironmentPlan) -> None:
        """Ids in the order rows were entered, and manifest numbers (联单编号) in shipping order."""
        ctx = self.ctx
        pairs = sorted(
            zip(plan.manifests, plan.receipts, strict=True),
            key=lambda mr: (mr[0]["shipped_at"], mr[0]["unit_id"]),
        )
        serial: dict[int, int] = {}
        for i, (manifest, receipt) in enumerate(pairs):
            year = manifest["shipped_at"].astimezone(LOCAL_TZ).year
            serial[year] = serial.get(year, 0) + 1
            number = f"{REGION}{year}{serial[year]:06d}"
            manifest["manifest_no"] = receipt["manifest_no"] = number
            manifest["id"] = ctx.first_ids["env_manifests"] + i
        plan.manifests = [m for m, _ in pairs]
        plan.receipts = sorted((r for _, r in pairs), key=lambda r: (r["received_at"], r["manifest_no"]))
        plan.production.sort(key=lambda r: (r["produced_on"], r["unit_id"], r["process_id"]))
        plan.stock_counts.sort(key=lambda r: (r["counted_at"], r["unit_id"]))
        for rows, table in (
            (plan.receipts, "env_manifest_receipts"),
            (plan.production, "env_production_reports"),
            (plan.stock_counts, "env_stock_counts"),
        ):
            for i, row in enumerate(rows):
                row["id"] = ctx.first_ids[table] + i

    # --- eco incidents and patrols -----------------------------------------------------------

    def _moment(self, day: dt.date, hours: Sequence[int]) -> dt.datetime:
        return _at(day, dt.time(self.rng.choice(hours), self.rng.randrange(60)))

    def _a_day(self, months: Sequence[int] | None = None) -> dt.date:
        span = (self.last_day - (self.today - dt.timedelta(days=365))).days
        while True:
            day = self.last_day - dt.timedelta(days=self.rng.randrange(span))
            if months is None or day.month in months:
                return day

    def _fill(self, template: str, n: int | None = None) -> str:
        rng = self.rng
        return template.format(
            n=rng.randint(2, 12) if n is None else n,
            kg=rng.randint(15, 190),
            t=round(rng.uniform(0.5, 6.0), 1),
            river=rng.choice(names.LAKE_INLETS),
        )

    def _incidents(self, plan: EnvironmentPlan) -> None:
        rng = self.rng
        kinds = [k for k, _, _ in names.ECO_INCIDENTS]
        weights = [w for _, w, _ in names.ECO_INCIDENTS]
        templates = {k: t for k, _, t in names.ECO_INCIDENTS}
        rows: list[Row] = []
        for _ in range(ECO_INCIDENTS):
            kind = rng.choices(kinds, weights)[0]
            if kind == "burning":
                day = self._a_day((5, 6, 10, 11))  # wheat and rice harvests
            elif kind == "sewage":
                day = self._a_day((4, 5, 6, 7, 8, 9))
            else:
                day = self._a_day()
            night = kind == "fishing" or (kind == "dumping" and rng.random() < 0.6)
            at = self._moment(day, (20, 21, 22, 23, 0, 1, 2, 3) if night else range(7, 19))
            if kind == "fishing" or rng.random() < 0.65:
                lat, lng = self._zone_point(min_lat=30.92 if kind == "fishing" else 0.0)
            else:
                lat, lng = self._near_zone_point()
            zoned = in_zone(lat, lng)
            station = (
                self.host_station_id if zoned else self.ctx.station_ids[self._nearest_station(lat, lng).code]
            )
            rows.append(
                {
                    "kind": kind,
                    "occurred_at": at,
                    "lat": lat,
                    "lng": lng,
                    "station_id": station,
                    "zone_id": plan.zone["id"] if zoned else None,
                    "description": self._fill(rng.choice(templates[kind])),
                    "source": "direct" if rng.random() < 0.7 else "incident",
                    "status": "open" if at > self.anchor - dt.timedelta(days=7) else "closed",
                    "reported_by": None,
                    "created_at": min(at + dt.timedelta(minutes=rng.randint(10, 180)), self.anchor),
                }
            )
        rows.sort(key=lambda r: r["occurred_at"])
        for i, row in enumerate(rows):
            row["id"] = self.ctx.first_ids["env_eco_incidents"] + i
        plan.incidents = rows

    def _patrols(self, plan: EnvironmentPlan) -> None:
        rng = self.rng
        rows: list[Row] = []
        for _ in range(PATROLS):
            kind = rng.choices(("patrol", "persuasion", "rescue"), (100, 42, 8))[0]
            if kind == "persuasion":
                day = self._a_day((6, 7, 8, 9))  # wild swimming season
                start = self._moment(day, range(14, 20))
                people = rng.randint(1, 12)
            elif kind == "rescue":
                day = self._a_day((4, 5, 6, 7, 8, 9, 10))
                start = self._moment(day, range(9, 20))
                people = rng.randint(1, 3)
            else:
                day = self._a_day()
                start = self._moment(day, (8, 9, 10, 14, 15, 19, 20, 21, 22))
                people = 0
            lat, lng = self._zone_point(min_lat=30.915)
            ended = min(start + dt.timedelta(minutes=rng.randint(40, 180)), self.anchor)
            zhili = "、".join(self.ctx.person() for _ in range(rng.randint(1, 2)))
            # A persuasion's or rescue's note counts the same people as people_count.
            note = self._fill(rng.choice(names.PATROL_NOTES[kind]), people if people else None)
            rows.append(
                {
                    "kind": kind,
                    "started_at": start,
                    "ended_at": ended,
                    "lat": lat,
                    "lng": lng,
                    "station_id": self.host_station_id,
                    "zone_id": plan.zone["id"] if in_zone(lat, lng) else None,
                    "people_count": people,
                    "officers": f"织里：{zhili}；吴江：{self.ctx.person()}",
                    "note": note,
                    "recorded_by": None,
                }
            )
        rows.sort(key=lambda r: r["started_at"])
        for i, row in enumerate(rows):
            row["id"] = self.ctx.first_ids["env_eco_patrols"] + i
        plan.patrols = rows


def _daily_ash(s: _Smelter) -> float:
    return sum(p.tonnes_per_day * p.coefficient / 1000 for p in s.processes)
