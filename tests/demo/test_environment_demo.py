"""The eco-policing demo data: the 乔溇 joint zone, 18 smelters and a year of ash ledger in which
the checks find exactly the two smelters that dump, on SQLite and (when configured) PostgreSQL.

Like tests/demo/test_generator.py, these read the district seeded into databases of their own
(tests/demo/conftest.py): seeding needs an empty schema.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections import defaultdict

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from eqian.all_models import Base
from eqian.core.accounts import Role, User
from eqian.core.geo import point_in_polygon, polygon_area_km2
from eqian.core.ids import is_valid_credit_code
from eqian.core.permissions import Principal, ScopeKind
from eqian.demo import environment
from eqian.demo.generator import _Builder
from eqian.environment.balance import compute_balance, period_of, shift_period
from eqian.environment.checks import run_checks
from eqian.environment.config import load_config
from eqian.environment.models import (
    Carrier,
    DisposalFacility,
    EcoIncident,
    EcoPatrol,
    EnvAlert,
    Manifest,
    ManifestReceipt,
    ProductionReport,
    SmelterProcess,
    StockCount,
)
from eqian.organizations.models import JointZone, Station, Unit
from eqian.organizations.service import unit_clause
from tests.demo.conftest import N_UNITS, SEED, TODAY, Seeded

# Under `--dist loadgroup` one worker takes every test reading the demo district, so the other
# never waits for its seed (tests/conftest.py built_once).
pytestmark = pytest.mark.xdist_group("demo")

DISTRICT = (30.75, 30.935, 120.15, 120.38)  # lat min, lat max, lng min, lng max


async def _zone(session: AsyncSession) -> JointZone:
    zone = await session.scalar(select(JointZone).where(JointZone.code == "qiaolou"))
    assert zone is not None
    return zone


def _polygon(zone: JointZone) -> list[tuple[float, float]]:
    return [(p[0], p[1]) for p in zone.polygon]


async def _smelter_ids(session: AsyncSession) -> set[int]:
    return set(await session.scalars(select(SmelterProcess.unit_id).distinct()))


# --- registry, zone and accounts ----------------------------------------------------------------


async def test_joint_zone_around_qiaolou(session: AsyncSession) -> None:
    zone = await _zone(session)
    assert zone.name == "乔溇联勤警务站核心区"
    assert zone.partner_agency == "苏州市公安局吴江分局"
    host = await session.get(Station, zone.station_id)
    assert host is not None
    assert host.code == "zhibei"
    assert host.lat == await session.scalar(select(func.max(Station.lat)))  # the northernmost station
    assert abs(polygon_area_km2(_polygon(zone)) - 9.2) <= 0.3
    assert all(30.90 <= lat <= 30.935 and 120.265 <= lng <= 120.315 for lat, lng in _polygon(zone))
    assert (await session.scalar(select(func.count()).select_from(JointZone))) == 1


async def test_partner_officer_sees_only_the_zone(session: AsyncSession, seeded: Seeded) -> None:
    zone = await _zone(session)
    users = {u.username: u for u in await session.scalars(select(User))}
    partner = users["partner_officer"]
    assert partner.role == Role.PARTNER_OFFICER.value
    assert partner.zone_id == zone.id
    assert "吴江" in partner.display_name
    assert len({u.password_hash for u in users.values()}) == 1
    assert all(u.zone_id is None for name, u in users.items() if name != "partner_officer")
    assert ("partner_officer", "partner_officer") in [(u, r) for u, r, _ in seeded.report.users]

    scope = Principal.of(partner).scope
    assert scope.kind is ScopeKind.ZONE
    visible = set(await session.scalars(select(Unit.id).where(unit_clause(scope))))
    zoned = set(await session.scalars(select(Unit.id).where(Unit.joint_zone_id == zone.id)))
    assert visible == zoned
    smelters = await _smelter_ids(session)
    assert 2 <= len(visible & smelters) <= 5
    assert len(visible & seeded.dumpers) == 1  # one of the dumpers is the partner agency's business


async def test_eighteen_smelters_with_processes(session: AsyncSession, seeded: Seeded) -> None:
    smelters = (await session.scalars(select(Unit).where(Unit.id.in_(await _smelter_ids(session))))).all()
    assert len(smelters) == 18 == seeded.report.smelters
    assert seeded.report.units == N_UNITS == await session.scalar(select(func.count()).select_from(Unit))
    assert all(u.category_code == "hazchem" and u.status == "active" for u in smelters)
    assert all(any(w in u.name for w in ("铝", "金属", "再生资源")) for u in smelters)
    assert all(u.name.endswith("公司") for u in smelters)
    assert all(is_valid_credit_code(u.credit_code) for u in smelters)
    assert all(u.address.startswith("湖州市吴兴区织里镇") for u in smelters)
    lat_min, lat_max, lng_min, lng_max = DISTRICT
    assert all(lat_min <= (u.lat or 0) <= lat_max and lng_min <= (u.lng or 0) <= lng_max for u in smelters)
    assert seeded.dumpers < {u.id for u in smelters}
    assert len(seeded.dumpers) == 2

    cfg = load_config()
    processes = (await session.scalars(select(SmelterProcess))).all()
    per_unit: defaultdict[int, list[SmelterProcess]] = defaultdict(list)
    for p in processes:
        per_unit[p.unit_id].append(p)
    assert all(1 <= len(ps) <= 3 for ps in per_unit.values())
    assert all(ps[0].name == "熔炼" or any(p.name == "熔炼" for p in ps) for ps in per_unit.values())
    assert all(
        20 <= p.coefficient_kg_per_t <= 60 and cfg.coefficient_in_range(p.coefficient_kg_per_t)
        for p in processes
    )

    facilities = (await session.scalars(select(DisposalFacility))).all()
    assert len(facilities) == 4
    assert sorted(f.in_district for f in facilities) == [False, False, True, True]
    assert (await session.scalar(select(func.count()).select_from(Carrier))) == 5


async def test_every_unit_is_in_the_zone_its_coordinates_say(session: AsyncSession) -> None:
    zone = await _zone(session)
    polygon = _polygon(zone)
    rows = (await session.execute(select(Unit.lat, Unit.lng, Unit.joint_zone_id))).all()
    assert all(
        (z == zone.id) == (lat is not None and lng is not None and point_in_polygon((lat, lng), polygon))
        for lat, lng, z in rows
    )
    assert sum(z is not None for _, _, z in rows) >= 2


# --- the ledger ---------------------------------------------------------------------------------


async def test_ledger_runs_a_year_up_to_the_last_full_day(session: AsyncSession, seeded: Seeded) -> None:
    last_day = TODAY - dt.timedelta(days=1)
    first, last = (
        await session.execute(
            select(func.min(ProductionReport.produced_on), func.max(ProductionReport.produced_on))
        )
    ).one()
    assert (first, last) == (dt.date(2024, 3, 1), last_day)
    assert seeded.anchor == dt.datetime(2025, 3, 11, 16, 0, tzinfo=dt.UTC)  # 00:00 Asia/Shanghai
    days_per_unit = dict(
        (
            await session.execute(
                select(
                    ProductionReport.unit_id, func.count(ProductionReport.produced_on.distinct())
                ).group_by(ProductionReport.unit_id)
            )
        ).all()
    )
    span = (last_day - first).days + 1
    assert len(days_per_unit) == 18
    # A Spring Festival week off, and now and then a day when the only line is down for maintenance.
    assert all(span - 20 <= n <= span for n in days_per_unit.values())
    assert sum(days_per_unit.values()) > 18 * (span - 10)
    assert seeded.report.ledger_entries == sum(
        [
            await session.scalar(select(func.count()).select_from(m)) or 0
            for m in (ProductionReport, StockCount, Manifest, ManifestReceipt)
        ]
    )

    manifests = (await session.scalars(select(Manifest).order_by(Manifest.shipped_at))).all()
    receipts = {(r.unit_id, r.manifest_no): r for r in await session.scalars(select(ManifestReceipt))}
    assert len(receipts) == len(manifests)
    assert len({(m.unit_id, m.manifest_no) for m in manifests}) == len(manifests)
    for m in manifests:
        r = receipts[(m.unit_id, m.manifest_no)]
        assert dt.timedelta(hours=1) <= r.received_at - m.shipped_at <= dt.timedelta(hours=30)
        assert r.received_at < seeded.anchor
        assert abs(r.received_t - m.shipped_t) <= 0.01 * m.shipped_t
    gaps: defaultdict[int, list[dt.datetime]] = defaultdict(list)
    for m in manifests:
        gaps[m.unit_id].append(m.shipped_at)
    # A truck every few days; the longest wait spans the Spring Festival week, when the furnaces rest.
    for at in gaps.values():
        waits = sorted(b - a for a, b in itertools.pairwise(at))
        assert waits[len(waits) // 2] < dt.timedelta(days=6)
        assert waits[-1] <= dt.timedelta(days=16)

    counts: defaultdict[int, list[dt.datetime]] = defaultdict(list)
    for c in await session.scalars(select(StockCount).order_by(StockCount.counted_at)):
        counts[c.unit_id].append(c.counted_at)
    assert all(
        max(b - a for a, b in itertools.pairwise(at)) <= dt.timedelta(days=7) for at in counts.values()
    )
    assert all(at[-1] < seeded.anchor for at in counts.values())


async def test_dumpers_ship_far_less_than_they_make_lately(session: AsyncSession, seeded: Seeded) -> None:
    """An oracle independent of balance.py: ash made vs shipped over the last eight weeks."""
    since = TODAY - dt.timedelta(days=56)
    made = dict(
        (
            await session.execute(
                select(
                    ProductionReport.unit_id,
                    func.sum(ProductionReport.aluminium_t * SmelterProcess.coefficient_kg_per_t) / 1000,
                )
                .join(SmelterProcess, SmelterProcess.id == ProductionReport.process_id)
                .where(ProductionReport.produced_on >= since)
                .group_by(ProductionReport.unit_id)
            )
        ).all()
    )
    shipped = dict(
        (
            await session.execute(
                select(Manifest.unit_id, func.sum(Manifest.shipped_t))
                .where(Manifest.shipped_at >= environment.anchor_of(since))
                .group_by(Manifest.unit_id)
            )
        ).all()
    )
    ratio = {uid: shipped.get(uid, 0.0) / made[uid] for uid in made}
    assert {uid for uid, r in ratio.items() if r < 0.75} == seeded.dumpers
    assert all(0.85 <= r <= 1.15 for uid, r in ratio.items() if uid not in seeded.dumpers)


async def test_checks_flag_exactly_the_two_dumpers(session: AsyncSession, seeded: Seeded) -> None:
    report = await run_checks(session, now=seeded.anchor)
    alerts = (await session.scalars(select(EnvAlert))).all()
    assert {a.kind for a in alerts} == {"unaccounted_ash"}
    assert set(report.by_kind) == {"unaccounted_ash"}
    assert {a.unit_id for a in alerts} == seeded.dumpers
    assert all(a.facility_id is None and a.severity == "red" for a in alerts)
    months: defaultdict[int | None, set[str]] = defaultdict(set)
    for a in alerts:
        months[a.unit_id].add(a.period)
        unaccounted, tolerance = a.evidence["unaccounted_t"], a.evidence["tolerance_t"]
        assert isinstance(unaccounted, float)
        assert isinstance(tolerance, float)
        assert unaccounted > 2 * tolerance
        assert a.evidence["production_ids"]
        assert a.evidence["manifest_ids"]
    last_full = shift_period(period_of(seeded.anchor), -1)
    assert all(2 <= len(periods) <= 4 and last_full in periods for periods in months.values())


async def test_balance_red_for_dumpers_green_for_the_rest(session: AsyncSession, seeded: Seeded) -> None:
    last_full = shift_period(period_of(seeded.anchor), -1)
    rows = await compute_balance(session, select(Unit.id), last_full)
    assert len(rows) == 18
    assert {r.unit_id for r in rows if r.status == "red"} == seeded.dumpers
    assert all(r.status == "green" for r in rows if r.unit_id not in seeded.dumpers)
    assert all(r.unconfirmed_t == 0 for r in rows)


async def test_honest_smelters_balance_within_two_percent_every_month(
    session: AsyncSession, seeded: Seeded
) -> None:
    """Δstock + shipped ≈ expected, month by month, recomputed here from the raw ledger."""
    expected: defaultdict[tuple[int, str], float] = defaultdict(float)
    query = select(
        ProductionReport.unit_id,
        ProductionReport.produced_on,
        ProductionReport.aluminium_t,
        SmelterProcess.coefficient_kg_per_t,
    ).join(SmelterProcess, SmelterProcess.id == ProductionReport.process_id)
    for uid, day, tonnes, coefficient in (await session.execute(query)).all():
        expected[(uid, day.strftime("%Y-%m"))] += tonnes * coefficient / 1000
    shipped: defaultdict[tuple[int, str], float] = defaultdict(float)
    query2 = select(Manifest.unit_id, Manifest.shipped_at, ManifestReceipt.received_t).join(
        ManifestReceipt,
        (ManifestReceipt.unit_id == Manifest.unit_id) & (ManifestReceipt.manifest_no == Manifest.manifest_no),
    )
    for uid, at, received in (await session.execute(query2)).all():
        shipped[(uid, period_of(at))] += received
    # The evening count of a month's last day closes it (and opens the next).
    closing: dict[tuple[int, str], float] = {}
    for uid, at, ash in (
        await session.execute(
            select(StockCount.unit_id, StockCount.counted_at, StockCount.ash_t).order_by(
                StockCount.counted_at
            )
        )
    ).all():
        closing[(uid, period_of(at))] = ash
    checked = 0
    for (uid, period), made in expected.items():
        if uid in seeded.dumpers or period == period_of(seeded.anchor):
            continue
        delta = closing[(uid, period)] - closing[(uid, shift_period(period, -1))]
        assert abs(made - shipped[(uid, period)] - delta) <= 0.02 * made, (uid, period)
        checked += 1
    assert checked == 16 * 12


async def test_facilities_stay_well_within_their_licences(session: AsyncSession) -> None:
    rows = (
        await session.execute(
            select(DisposalFacility.licensed_capacity_t_per_year, func.sum(ManifestReceipt.received_t))
            .join(Manifest, Manifest.facility_id == DisposalFacility.id)
            .join(
                ManifestReceipt,
                (ManifestReceipt.unit_id == Manifest.unit_id)
                & (ManifestReceipt.manifest_no == Manifest.manifest_no),
            )
            .group_by(DisposalFacility.id, DisposalFacility.licensed_capacity_t_per_year)
        )
    ).all()
    assert len(rows) == 4
    assert all(received < 0.7 * capacity for capacity, received in rows)  # a whole year of receipts


# --- eco incidents and patrols ------------------------------------------------------------------


async def test_eco_incidents_mostly_in_and_near_the_zone(session: AsyncSession, seeded: Seeded) -> None:
    zone = await _zone(session)
    polygon = _polygon(zone)
    incidents = (await session.scalars(select(EcoIncident))).all()
    assert len(incidents) == 60 == seeded.report.eco_incidents
    assert {i.kind for i in incidents} == {"fishing", "dumping", "sewage", "burning"}
    assert all((i.zone_id == zone.id) == point_in_polygon((i.lat, i.lng), polygon) for i in incidents)
    assert sum(i.zone_id is not None for i in incidents) >= 36
    assert all(i.station_id == zone.station_id for i in incidents if i.zone_id is not None)
    assert all(30.87 <= i.lat <= 30.935 for i in incidents)
    assert all(seeded.anchor - dt.timedelta(days=366) < i.occurred_at < seeded.anchor for i in incidents)
    assert all(not i.description.isascii() and len(i.description) >= 8 for i in incidents)
    assert any("地笼网" in i.description for i in incidents)


async def test_joint_station_patrols(session: AsyncSession, seeded: Seeded) -> None:
    zone = await _zone(session)
    polygon = _polygon(zone)
    patrols = (await session.scalars(select(EcoPatrol))).all()
    assert len(patrols) == 150 == seeded.report.eco_patrols
    kinds = defaultdict(list)
    for p in patrols:
        kinds[p.kind].append(p)
    assert set(kinds) == {"patrol", "persuasion", "rescue"}
    assert all(p.people_count == 0 for p in kinds["patrol"])
    assert all(p.people_count >= 1 and f"{p.people_count}名" in p.note for p in kinds["persuasion"])
    assert all(
        p.started_at.astimezone(environment.LOCAL_TZ).month in (6, 7, 8, 9) for p in kinds["persuasion"]
    )
    assert all(p.station_id == zone.station_id for p in patrols)
    assert all((p.zone_id == zone.id) == point_in_polygon((p.lat, p.lng), polygon) for p in patrols)
    assert all(p.zone_id == zone.id for p in patrols)
    assert all(p.ended_at is not None and p.started_at < p.ended_at <= seeded.anchor for p in patrols)
    assert all("吴江" in p.officers and "织里" in p.officers for p in patrols)


# --- determinism --------------------------------------------------------------------------------


async def _db_totals(session: AsyncSession) -> tuple[float, ...]:
    out: list[float] = []
    for column in (
        ProductionReport.aluminium_t,
        StockCount.ash_t,
        Manifest.shipped_t,
        ManifestReceipt.received_t,
    ):
        n, total = (await session.execute(select(func.count(), func.sum(column)))).one()
        out += [n, round(total, 2)]
    return tuple(out)


def _planned_totals(today: dt.date) -> tuple[float, ...]:
    first_ids = {table.name: 1 for table in Base.metadata.sorted_tables}
    builder = _Builder(
        seed=SEED,
        scale="town",
        n_units=N_UNITS,
        first_ids=first_ids,
        bureau_id=None,
        password_hash="",
        now=dt.datetime(2025, 1, 1, tzinfo=dt.UTC),
        today=today,
    )
    env = builder.build().env
    assert env is not None
    out: list[float] = []
    for rows, key in (
        (env.production, "aluminium_t"),
        (env.stock_counts, "ash_t"),
        (env.manifests, "shipped_t"),
        (env.receipts, "received_t"),
    ):
        out += [len(rows), round(sum(r[key] for r in rows), 2)]
    return tuple(out)


async def test_same_seed_and_day_same_ledger(session: AsyncSession) -> None:
    stored = await _db_totals(session)
    planned = _planned_totals(TODAY)
    assert len(stored) == len(planned)
    assert stored == pytest.approx(planned, abs=0.02)
    assert _planned_totals(TODAY + dt.timedelta(days=1)) != planned
