"""Eco-policing jurisdiction for every role, the partner agency's zone-only officer in particular.

The district of ``make_world`` gets two joint zones (乔溇, hosted by station A, holding unit a3; a
second one hosted by station B, holding b2), smelter processes on a1, a3, b1 and b2 (a2 stays an
ordinary unit), an open alert per smelter plus a facility alert, and eco incidents and patrols in
and outside the zones. Each role must list exactly its share and get 404 for everything else.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field

import httpx
import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from eqian.core.accounts import Role, User
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
)
from eqian.organizations.models import JointZone, Unit
from tests.factories import World, bearer, make_world
from tests.scoped import ScopedEndpoints, check_scoped_endpoints

API = "/api/v1/environment"
# 乔溇 core area on Lake Tai, hosted by station A; a second zone hosted by station B.
ZONE_A_POLYGON = [[30.94, 120.39], [30.94, 120.41], [30.96, 120.41], [30.96, 120.39]]
ZONE_B_POLYGON = [[30.79, 120.29], [30.79, 120.31], [30.81, 120.31], [30.81, 120.29]]
IN_ZONE_A = (30.95, 120.40)
IN_ZONE_B = (30.80, 120.30)
OUTSIDE = (30.84, 120.26)  # where make_world puts its units

EVERYONE = [
    "bureau_admin",
    "station_officer",
    "station_officer_b",
    "liaison_officer",
    "unit_security",
    "mediator",
    "service_point_staff",
    "partner_officer",
    "partner_unanchored",
]
_names = itertools.count(1)


@dataclass
class EnvWorld:
    world: World
    zone_a: int = 0
    zone_b: int = 0
    processes: dict[str, int] = field(default_factory=dict)  # unit label -> its process
    alerts: dict[str, int] = field(default_factory=dict)  # unit label or "facility" -> alert
    incidents: dict[str, int] = field(default_factory=dict)
    patrols: dict[str, int] = field(default_factory=dict)
    facility: int = 0
    carrier: int = 0

    def units(self, *labels: str) -> set[int]:
        return self.world.unit_ids(*labels)


async def make_env_world(db: AsyncSession) -> EnvWorld:
    w = await make_world(db)
    env = EnvWorld(world=w)
    zone_a = JointZone(
        code="qiaolou",
        name="乔溇联勤区",
        partner_agency="吴江公安",
        station_id=w.station_a,
        polygon=ZONE_A_POLYGON,
    )
    zone_b = JointZone(
        code="zhinan-lake",
        name="织南湖区",
        partner_agency="长兴公安",
        station_id=w.station_b,
        polygon=ZONE_B_POLYGON,
    )
    db.add_all([zone_a, zone_b])
    await db.flush()
    env.zone_a, env.zone_b = zone_a.id, zone_b.id
    await db.execute(
        update(Unit)
        .where(Unit.id == w.units["a3"])
        .values(lat=IN_ZONE_A[0], lng=IN_ZONE_A[1], joint_zone_id=zone_a.id)
    )
    await db.execute(
        update(Unit)
        .where(Unit.id == w.units["b2"])
        .values(lat=IN_ZONE_B[0], lng=IN_ZONE_B[1], joint_zone_id=zone_b.id)
    )
    for label in ("a1", "a3", "b1", "b2"):
        process = SmelterProcess(unit_id=w.units[label], name="回转炉", coefficient_kg_per_t=50.0)
        db.add(process)
        await db.flush()
        env.processes[label] = process.id
    facility = DisposalFacility(
        name="湖州危废处置中心", licence_no="HW-3305-001", licensed_capacity_t_per_year=5000.0
    )
    carrier = Carrier(name="织里危运车队", licence_no="YS-3305-001")
    db.add_all([facility, carrier])
    await db.flush()
    env.facility, env.carrier = facility.id, carrier.id
    for label in ("a1", "a3", "b1", "b2", "facility"):
        alert = EnvAlert(
            fingerprint=f"test:{label}",
            unit_id=None if label == "facility" else w.units[label],
            facility_id=facility.id if label == "facility" else None,
            kind="facility_over_licence" if label == "facility" else "unaccounted_ash",
            severity="red",
            period="2026",
            message=f"测试预警 {label}",
            evidence={"label": label},
            status="open",
        )
        db.add(alert)
        await db.flush()
        env.alerts[label] = alert.id
    when = dt.datetime(2026, 5, 1, 8, tzinfo=dt.UTC)
    places = {
        "a_out": (w.station_a, OUTSIDE, None),
        "a_zone": (w.station_a, IN_ZONE_A, zone_a.id),
        "b_out": (w.station_b, OUTSIDE, None),
        "b_zone": (w.station_b, IN_ZONE_B, zone_b.id),
    }
    for label, (station, (lat, lng), zone) in places.items():
        incident = EcoIncident(
            kind="fishing",
            occurred_at=when,
            lat=lat,
            lng=lng,
            station_id=station,
            zone_id=zone,
            description=f"非法捕捞 {label}",
        )
        patrol = EcoPatrol(
            kind="patrol", started_at=when, lat=lat, lng=lng, station_id=station, zone_id=zone, people_count=2
        )
        db.add_all([incident, patrol])
        await db.flush()
        env.incidents[label], env.patrols[label] = incident.id, patrol.id
    hash_ = w.users["bureau_admin"].password_hash
    for username, zone_id in (("partner_officer", zone_a.id), ("partner_unanchored", None)):
        user = User(
            username=username,
            display_name=username,
            password_hash=hash_,
            role=Role.PARTNER_OFFICER.value,
            zone_id=zone_id,
        )
        db.add(user)
        await db.flush()
        w.users[username] = user
    await db.commit()
    return env


@pytest.fixture
async def env(db: AsyncSession) -> EnvWorld:
    return await make_env_world(db)


@pytest.fixture
async def headers(db: AsyncSession, env: EnvWorld) -> dict[str, dict[str, str]]:
    return {name: await bearer(db, user) for name, user in env.world.users.items()}


def _by_role(mapping: Mapping[str, set[int]]) -> dict[str, set[int]]:
    assert set(mapping) == set(EVERYONE)
    return dict(mapping)


async def _count(db: AsyncSession, model: type[object]) -> int:
    return int(await db.scalar(select(func.count()).select_from(model)) or 0)


# --- smelters, ledger and balance ------------------------------------------------------------


async def test_smelters_ledger_and_balance_follow_unit_scope(
    client: httpx.AsyncClient, env: EnvWorld, headers: dict[str, dict[str, str]]
) -> None:
    visible = _by_role(
        {
            "bureau_admin": env.units("a1", "a3", "b1", "b2"),
            "station_officer": env.units("a1", "a3"),
            "station_officer_b": env.units("b1", "b2"),
            "liaison_officer": env.units("a1"),
            "unit_security": env.units("a1"),
            "mediator": set(),
            "service_point_staff": env.units("a1"),
            "partner_officer": env.units("a3"),
            "partner_unanchored": set(),
        }
    )
    every_unit = env.units("a1", "a2", "a3", "b1", "b2")  # a2 has no process: no smelter for anyone
    for who, expected in visible.items():
        h = headers[who]
        r = await client.get(f"{API}/smelters", params={"limit": 500}, headers=h)
        assert r.status_code == 200, (who, r.text)
        assert {s["unit_id"] for s in r.json()["items"]} == expected, who
        assert r.json()["total"] == len(expected), who
        r = await client.get(f"{API}/balance", params={"period": "2026-05"}, headers=h)
        assert r.status_code == 200, (who, r.text)
        assert {row["unit_id"] for row in r.json()["items"]} == expected, who
        for unit_id in sorted(every_unit):
            urls = [
                f"{API}/smelters/{unit_id}",
                f"{API}/units/{unit_id}/ledger?period=2026-05",
                f"{API}/units/{unit_id}/balance?months=2",
            ]
            for url in urls:
                r = await client.get(url, headers=h)
                if unit_id in expected:
                    assert r.status_code == 200, (who, url, r.text)
                else:
                    assert r.status_code == 404, (who, url, r.status_code)
                    assert r.json()["error"]["code"] == "not_found"
                    assert str(unit_id) not in r.json()["error"]["message"]
    r = await client.get(f"{API}/smelters/{env.world.units['a3']}", headers=headers["partner_officer"])
    body = r.json()
    assert body["joint_zone_id"] == env.zone_a
    assert [p["id"] for p in body["processes"]] == [env.processes["a3"]]


async def test_registry_and_ledger_writes_by_role(
    client: httpx.AsyncClient, db: AsyncSession, env: EnvWorld, headers: dict[str, dict[str, str]]
) -> None:
    a1, a3 = env.world.units["a1"], env.world.units["a3"]
    process_status = {
        "bureau_admin": 201,
        "station_officer": 201,
        "station_officer_b": 404,
        "liaison_officer": 403,
        "unit_security": 403,
        "mediator": 404,
        "service_point_staff": 403,
        "partner_officer": 404,
        "partner_unanchored": 404,
    }
    for who, status in process_status.items():
        before = await _count(db, SmelterProcess)
        r = await client.post(
            f"{API}/units/{a1}/processes",
            json={"name": f"精炼炉{next(_names)}", "coefficient_kg_per_t": 30},
            headers=headers[who],
        )
        assert r.status_code == status, (who, r.text)
        assert await _count(db, SmelterProcess) == before + (status == 201)

    production_status = {**process_status, "unit_security": 201}  # a smelter's own staff keep its ledger
    for who, status in production_status.items():
        before = await _count(db, ProductionReport)
        r = await client.post(
            f"{API}/units/{a1}/production",
            json={"process_id": env.processes["a1"], "produced_on": "2026-05-03", "aluminium_t": 10},
            headers=headers[who],
        )
        assert r.status_code == status, (who, r.text)
        assert await _count(db, ProductionReport) == before + (status == 201)

    # Receipts on a3 (in the joint zone): officers enter the facility's confirmation, the partner too.
    receipt_status = {
        "bureau_admin": 201,
        "station_officer": 201,
        "station_officer_b": 404,
        "liaison_officer": 404,
        "unit_security": 404,
        "mediator": 404,
        "service_point_staff": 404,
        "partner_officer": 201,
        "partner_unanchored": 404,
    }
    for who, status in receipt_status.items():
        manifest_no = f"HW-{next(_names):06d}"
        r = await client.post(
            f"{API}/units/{a3}/manifests",
            json={
                "manifest_no": manifest_no,
                "shipped_at": "2026-05-04T09:00:00+08:00",
                "shipped_t": 2.0,
                "carrier_id": env.carrier,
                "vehicle_plate": "浙E12345",
                "facility_id": env.facility,
            },
            headers=headers["station_officer"],
        )
        assert r.status_code == 201, r.text
        before = await _count(db, ManifestReceipt)
        r = await client.post(
            f"{API}/units/{a3}/manifests/{manifest_no}/receipts",
            json={"received_at": "2026-05-04T15:00:00+08:00", "received_t": 2.0},
            headers=headers[who],
        )
        assert r.status_code == status, (who, r.text)
        assert await _count(db, ManifestReceipt) == before + (status == 201)
    # a3's own manifests are not the partner's to write: only receipts are.
    r = await client.post(
        f"{API}/units/{a3}/stock-counts",
        json={"counted_at": "2026-05-05T08:00:00+08:00", "ash_t": 1},
        headers=headers["partner_officer"],
    )
    assert r.status_code == 403
    assert await _count(db, Manifest) == len(receipt_status)


# --- alerts --------------------------------------------------------------------------------------


async def test_alerts_follow_unit_scope_and_facility_alerts_stay_with_officers(
    client: httpx.AsyncClient, env: EnvWorld, headers: dict[str, dict[str, str]]
) -> None:
    a = env.alerts
    spec = ScopedEndpoints(
        list_url=f"{API}/alerts",
        detail_url=lambda i: f"{API}/alerts/{i}",
        all_ids=set(a.values()),
        visible=_by_role(
            {
                "bureau_admin": set(a.values()),
                "station_officer": {a["a1"], a["a3"], a["facility"]},
                "station_officer_b": {a["b1"], a["b2"], a["facility"]},
                "liaison_officer": {a["a1"]},
                "unit_security": {a["a1"]},
                "mediator": set(),
                "service_point_staff": {a["a1"]},
                "partner_officer": {a["a3"]},
                "partner_unanchored": set(),
            }
        ),
    )
    await check_scoped_endpoints(client, headers, spec)
    r = await client.get(
        f"{API}/alerts", params={"unit_id": env.world.units["a3"]}, headers=headers["bureau_admin"]
    )
    assert [x["id"] for x in r.json()["items"]] == [a["a3"]]
    assert r.json()["items"][0]["evidence"] == {"label": "a3"}
    r = await client.get(
        f"{API}/alerts", params={"kind": "facility_over_licence"}, headers=headers["bureau_admin"]
    )
    assert [x["id"] for x in r.json()["items"]] == [a["facility"]]
    assert r.json()["items"][0]["unit_id"] is None
    # Filtering by another unit never widens the scope.
    r = await client.get(
        f"{API}/alerts", params={"unit_id": env.world.units["b1"]}, headers=headers["unit_security"]
    )
    assert r.json() == {"items": [], "total": 0}
    # Only the command centre runs every check (its run is covered by the API tests).
    for who in EVERYONE[1:]:
        r = await client.post(f"{API}/checks", headers=headers[who])
        assert r.status_code == 403, who


# --- eco incidents, patrols, zones -------------------------------------------------------------


def _eco_visible(ids: Mapping[str, int]) -> dict[str, set[int]]:
    return _by_role(
        {
            "bureau_admin": set(ids.values()),
            "station_officer": {ids["a_out"], ids["a_zone"]},
            "station_officer_b": {ids["b_out"], ids["b_zone"]},
            "liaison_officer": set(),
            "unit_security": set(),
            "mediator": set(),
            "service_point_staff": set(),
            "partner_officer": {ids["a_zone"]},
            "partner_unanchored": set(),
        }
    )


ECO_CREATE_STATUS = {
    "bureau_admin": 201,
    "station_officer": 201,
    "station_officer_b": 404,  # station A is not theirs
    "liaison_officer": 403,
    "unit_security": 403,
    "mediator": 403,
    "service_point_staff": 403,
    "partner_officer": 201,  # inside their zone, filed under its host station
    "partner_unanchored": 404,
}


async def test_eco_incidents_by_station_and_zone(
    client: httpx.AsyncClient, db: AsyncSession, env: EnvWorld, headers: dict[str, dict[str, str]]
) -> None:
    async def count() -> int:
        return await _count(db, EcoIncident)

    spec = ScopedEndpoints(
        list_url=f"{API}/eco-incidents",
        detail_url=lambda i: f"{API}/eco-incidents/{i}",
        all_ids=set(env.incidents.values()),
        visible=_eco_visible(env.incidents),
        create_url=f"{API}/eco-incidents",
        create_body=lambda who: {
            "kind": "dumping",
            "occurred_at": "2026-05-02T21:30:00+08:00",
            "lat": IN_ZONE_A[0],
            "lng": IN_ZONE_A[1],
            "station_id": env.world.station_a,
            "description": f"夜间倾倒可疑粉末（{who}）",
        },
        create_status=ECO_CREATE_STATUS,
        count=count,
    )
    await check_scoped_endpoints(client, headers, spec)
    r = await client.get(
        f"{API}/eco-incidents", params={"kind": "dumping"}, headers=headers["partner_officer"]
    )
    created = r.json()["items"]
    assert len(created) == 3  # bureau, station officer, partner: all inside the zone, all visible to it
    assert {i["zone_id"] for i in created} == {env.zone_a}


async def test_patrols_by_station_and_zone(
    client: httpx.AsyncClient, db: AsyncSession, env: EnvWorld, headers: dict[str, dict[str, str]]
) -> None:
    async def count() -> int:
        return await _count(db, EcoPatrol)

    spec = ScopedEndpoints(
        list_url=f"{API}/patrols",
        detail_url=lambda i: f"{API}/patrols/{i}",
        all_ids=set(env.patrols.values()),
        visible=_eco_visible(env.patrols),
        create_url=f"{API}/patrols",
        create_body=lambda who: {
            "kind": "persuasion",
            "started_at": "2026-05-02T16:00:00+08:00",
            "ended_at": "2026-05-02T17:00:00+08:00",
            "lat": IN_ZONE_A[0],
            "lng": IN_ZONE_A[1],
            "station_id": env.world.station_a,
            "people_count": 3,
            "officers": who,
            "note": "劝离野泳人员",
        },
        create_status=ECO_CREATE_STATUS,
        count=count,
    )
    await check_scoped_endpoints(client, headers, spec)


async def test_partner_records_only_inside_their_zone(
    client: httpx.AsyncClient, db: AsyncSession, env: EnvWorld, headers: dict[str, dict[str, str]]
) -> None:
    h = headers["partner_officer"]
    base = {
        "kind": "fishing",
        "occurred_at": "2026-05-02T05:00:00+08:00",
        "station_id": env.world.station_a,
        "description": "电鱼",
    }
    before = await _count(db, EcoIncident)
    for lat, lng in (OUTSIDE, IN_ZONE_B):
        r = await client.post(f"{API}/eco-incidents", json={**base, "lat": lat, "lng": lng}, headers=h)
        assert r.status_code == 422, r.text
        assert {d["field"] for d in r.json()["error"]["details"]} == {"lat", "lng"}
    r = await client.post(
        f"{API}/eco-incidents",
        json={**base, "lat": IN_ZONE_A[0], "lng": IN_ZONE_A[1], "station_id": env.world.station_b},
        headers=h,
    )
    assert r.status_code == 422
    assert r.json()["error"]["details"][0]["field"] == "station_id"
    assert await _count(db, EcoIncident) == before
    # A station officer's record outside every zone has no zone; inside one it gets it.
    r = await client.post(
        f"{API}/eco-incidents",
        json={**base, "lat": OUTSIDE[0], "lng": OUTSIDE[1]},
        headers=headers["station_officer"],
    )
    assert r.status_code == 201
    assert r.json()["zone_id"] is None
    r = await client.post(
        f"{API}/patrols",
        json={
            "kind": "rescue",
            "started_at": "2026-05-02T05:00:00+08:00",
            "lat": IN_ZONE_B[0],
            "lng": IN_ZONE_B[1],
            "station_id": env.world.station_b,
        },
        headers=headers["station_officer_b"],
    )
    assert r.status_code == 201
    assert r.json()["zone_id"] == env.zone_b
    # ... and stays invisible to the partner of the other zone.
    r = await client.get(f"{API}/patrols/{r.json()['id']}", headers=h)
    assert r.status_code == 404


async def test_zones_by_role(
    client: httpx.AsyncClient, env: EnvWorld, headers: dict[str, dict[str, str]]
) -> None:
    spec = ScopedEndpoints(
        list_url=f"{API}/zones",
        detail_url=lambda i: f"{API}/zones/{i}",
        all_ids={env.zone_a, env.zone_b},
        visible=_by_role(
            {
                "bureau_admin": {env.zone_a, env.zone_b},
                "station_officer": {env.zone_a},
                "station_officer_b": {env.zone_b},
                "liaison_officer": set(),
                "unit_security": set(),
                "mediator": set(),
                "service_point_staff": set(),
                "partner_officer": {env.zone_a},
                "partner_unanchored": set(),
            }
        ),
    )
    await check_scoped_endpoints(client, headers, spec)
    zone = (await client.get(f"{API}/zones/{env.zone_a}", headers=headers["partner_officer"])).json()
    assert zone["code"] == "qiaolou"
    assert zone["partner_agency"] == "吴江公安"
    # 0.02° of latitude (2.224 km) by 0.02° of longitude at 30.95° N (1.907 km)
    assert zone["area_km2"] == pytest.approx(4.24, abs=0.01)


# --- facilities and carriers ----------------------------------------------------------------------


REFERENCE_VISIBLE = {
    "bureau_admin": True,
    "station_officer": True,
    "station_officer_b": True,
    "liaison_officer": True,
    "unit_security": True,  # picks them in the manifest form
    "mediator": False,
    "service_point_staff": False,
    "partner_officer": True,
    "partner_unanchored": False,
}


@pytest.mark.parametrize(
    ("path", "model", "body"),
    [
        (
            "facilities",
            DisposalFacility,
            lambda n: {"name": f"处置中心{n}", "licence_no": f"HW-{n}", "licensed_capacity_t_per_year": 800},
        ),
        ("carriers", Carrier, lambda n: {"name": f"危运车队{n}", "licence_no": f"YS-{n}"}),
    ],
)
async def test_facilities_and_carriers_readable_by_officers_and_smelter_staff(
    client: httpx.AsyncClient,
    db: AsyncSession,
    env: EnvWorld,
    headers: dict[str, dict[str, str]],
    path: str,
    model: type[object],
    body: object,
) -> None:
    existing = env.facility if path == "facilities" else env.carrier

    async def count() -> int:
        return await _count(db, model)

    make_body = body  # a callable n -> dict
    assert callable(make_body)
    spec = ScopedEndpoints(
        list_url=f"{API}/{path}",
        detail_url=lambda i: f"{API}/{path}/{i}",
        all_ids={existing},
        visible={who: ({existing} if ok else set()) for who, ok in REFERENCE_VISIBLE.items()},
        create_url=f"{API}/{path}",
        create_body=lambda who: make_body(next(_names)),
        create_status={who: 201 if who == "bureau_admin" else 403 for who in EVERYONE},
        count=count,
    )
    await check_scoped_endpoints(client, headers, spec)
