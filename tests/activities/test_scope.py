"""Every role lists exactly its share of activities and gets 404 for the rest; only the bureau and a
station's own officers may plan; a viewer sees only its own units' invitations."""

from __future__ import annotations

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from eqian.activities.models import Activity
from tests.activities import API, EVERYONE, local, make_activity_world
from tests.scoped import ScopedEndpoints, check_scoped_endpoints


async def test_every_role_sees_and_plans_exactly_its_share(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    aw = await make_activity_world(db)
    act = aw.activities
    station_a = aw.world.station_a

    async def count() -> int:
        return (await db.execute(select(func.count(Activity.id)))).scalar_one()

    spec = ScopedEndpoints(
        list_url=API,
        detail_url=lambda i: f"{API}/{i}",
        all_ids=set(act.values()),
        visible={
            "bureau_admin": set(act.values()),
            "station_officer": {act["a_round"], act["a_meet"], act["a_patrol"], act["bureau"]},
            "station_officer_b": {act["b_round"], act["bureau"]},
            "liaison_officer": {act["a_round"], act["bureau"]},
            "unit_security": {act["a_round"], act["bureau"]},
            "service_point_staff": {act["a_round"], act["a_meet"], act["bureau"]},
            "mediator": set(),
            "partner_officer": set(),
        },
        create_url=API,
        create_body=lambda who: {
            "station_id": station_a,
            "kind": "safety_training",
            "title": f"消防安全培训 {who}",
            "starts_at": local(2026, 3, 5, 9).isoformat(),
            "ends_at": local(2026, 3, 5, 11).isoformat(),
        },
        create_status={
            "bureau_admin": 201,
            "station_officer": 201,
            "station_officer_b": 403,
            "liaison_officer": 403,
            "unit_security": 403,
            "service_point_staff": 403,
            "mediator": 403,
            "partner_officer": 403,
        },
        count=count,
    )
    assert set(spec.visible) == set(EVERYONE)
    await check_scoped_endpoints(client, aw.headers, spec)


async def test_a_viewer_sees_only_its_own_units_invitations(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    aw = await make_activity_world(db)
    url = f"{API}/{aw.activities['bureau']}"  # bureau-wide: a1 (station A) and b2 (station B) invited
    expected = {
        "bureau_admin": {aw.unit("a1"), aw.unit("b2")},
        "station_officer": {aw.unit("a1")},
        "station_officer_b": {aw.unit("b2")},
        "liaison_officer": {aw.unit("a1")},
        "unit_security": {aw.unit("a1")},
        "service_point_staff": {aw.unit("a1")},
    }
    for who, units in expected.items():
        r = await client.get(url, headers=aw.headers[who])
        assert r.status_code == 200, (who, r.text)
        assert {i["unit_id"] for i in r.json()["invitations"]} == units, who


async def test_unit_filter_does_not_reveal_other_units(client: httpx.AsyncClient, db: AsyncSession) -> None:
    aw = await make_activity_world(db)
    r = await client.get(API, params={"unit_id": aw.unit("b1")}, headers=aw.headers["unit_security"])
    assert r.json() == {"items": [], "total": 0}
    r = await client.get(API, params={"unit_id": aw.unit("a1")}, headers=aw.headers["station_officer"])
    assert {i["id"] for i in r.json()["items"]} == {aw.activities["a_round"], aw.activities["bureau"]}


async def test_a_station_officer_cannot_plan_bureau_wide_or_for_another_station(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    aw = await make_activity_world(db)
    body = {
        "kind": "joint_patrol",
        "title": "联合巡逻",
        "starts_at": local(2026, 3, 5, 20).isoformat(),
        "ends_at": local(2026, 3, 5, 22).isoformat(),
    }
    r = await client.post(API, json=body, headers=aw.headers["station_officer"])
    assert r.status_code == 403
    r = await client.post(
        API, json=body | {"station_id": aw.world.station_b}, headers=aw.headers["station_officer"]
    )
    assert r.status_code == 403
    r = await client.post(API, json=body | {"status": "held"}, headers=aw.headers["bureau_admin"])
    assert r.status_code == 422  # unknown fields are refused
    r = await client.post(
        API, json=body | {"ends_at": local(2026, 3, 5, 19).isoformat()}, headers=aw.headers["bureau_admin"]
    )
    assert r.status_code == 422
    r = await client.post(API, json=body | {"station_id": 2**31}, headers=aw.headers["bureau_admin"])
    assert r.status_code == 422
    r = await client.post(API, json=body | {"station_id": 99999}, headers=aw.headers["bureau_admin"])
    assert r.status_code == 422


async def test_absurd_dates_are_refused_not_crashed(client: httpx.AsyncClient, db: AsyncSession) -> None:
    aw = await make_activity_world(db)
    h = aw.headers["bureau_admin"]
    r = await client.get(f"{API}/participation", params={"to": "9999-12-31"}, headers=h)
    assert r.status_code == 422
    r = await client.get(API, params={"from": "0001-01-01"}, headers=h)
    assert r.status_code == 422
    body = {"station_id": aw.world.station_a, "weeks": 52, "start": "9999-12-01"}
    r = await client.post(f"{API}/roundtables/schedule", json=body, headers=h)
    assert r.status_code == 422
    create = {
        "kind": "joint_patrol",
        "title": "x",
        "starts_at": "9999-12-31T23:00:00+00:00",
        "ends_at": "9999-12-31T23:30:00+00:00",
    }
    r = await client.post(API, json=create, headers=h)
    assert r.status_code == 422
    r = await client.post(
        API, json=create | {"starts_at": "2026-03-01T09:00:00", "ends_at": "2026-03-01T10:00:00"}, headers=h
    )
    assert r.status_code == 422
    r = await client.patch(
        f"{API}/{aw.activities['a_round']}", json={"starts_at": "0001-01-01T00:00:00+14:00"}, headers=h
    )
    assert r.status_code == 422
