"""Units API: scope for every role, filters, writes, validation, masking and audited reveal."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from eqian.core.audit import AuditLog
from eqian.organizations.models import Unit
from tests.factories import ROLES, World, bearer, credit_code, make_world
from tests.scoped import ScopedEndpoints, check_scoped_endpoints


@pytest.fixture
async def world(db: AsyncSession) -> World:
    return await make_world(db)


@pytest.fixture
async def headers(db: AsyncSession, world: World) -> dict[str, dict[str, str]]:
    return {name: await bearer(db, user) for name, user in world.users.items()}


def _new_unit(world: World, station: int) -> dict[str, object]:
    return {
        "name": "新开童装厂",
        "credit_code": credit_code(),
        "category_code": "garment",
        "station_id": station,
        "address": "织里镇大港路8号",
        "employee_count": 30,
    }


async def test_every_role_sees_exactly_its_jurisdiction(
    client: httpx.AsyncClient, db: AsyncSession, world: World, headers: dict[str, dict[str, str]]
) -> None:
    async def unit_count() -> int:
        return int(await db.scalar(select(func.count()).select_from(Unit)) or 0)

    spec = ScopedEndpoints(
        list_url="/api/v1/units",
        detail_url=lambda i: f"/api/v1/units/{i}",
        all_ids=world.unit_ids("a1", "a2", "a3", "b1", "b2"),
        visible={
            "bureau_admin": world.unit_ids("a1", "a2", "a3", "b1", "b2"),
            "station_officer": world.unit_ids("a1", "a2", "a3"),
            "station_officer_b": world.unit_ids("b1", "b2"),
            "liaison_officer": world.unit_ids("a1"),
            "unit_security": world.unit_ids("a1"),
            "mediator": set(),
            "service_point_staff": world.unit_ids("a1", "a2"),
        },
        create_url="/api/v1/units",
        create_body=lambda who: _new_unit(world, world.station_a),
        create_status={
            "bureau_admin": 201,
            "station_officer": 201,
            "station_officer_b": 404,
            "liaison_officer": 403,
            "unit_security": 403,
            "mediator": 403,
            "service_point_staff": 403,
        },
        count=unit_count,
    )
    await check_scoped_endpoints(client, headers, spec)


async def test_list_filters_sort_and_paging(
    client: httpx.AsyncClient, world: World, headers: dict[str, dict[str, str]]
) -> None:
    h = headers["bureau_admin"]
    r = await client.get("/api/v1/units", params={"category": "garment"}, headers=h)
    assert {u["id"] for u in r.json()["items"]} == world.unit_ids("a1", "b1")
    r = await client.get("/api/v1/units", params={"station_id": world.station_b}, headers=h)
    assert r.json()["total"] == 2
    r = await client.get("/api/v1/units", params={"service_point_id": world.sp_a}, headers=h)
    assert {u["id"] for u in r.json()["items"]} == world.unit_ids("a1", "a2")
    r = await client.get("/api/v1/units", params={"q": "吾悦"}, headers=h)
    assert [u["name"] for u in r.json()["items"]] == ["吾悦广场"]
    r = await client.get("/api/v1/units", params={"q": "%"}, headers=h)
    assert r.json()["total"] == 0  # a typed % is searched literally, not as a wildcard
    r = await client.get("/api/v1/units", params={"sort": "-id", "limit": 2, "offset": 1}, headers=h)
    body = r.json()
    assert body["total"] == 5
    assert [u["id"] for u in body["items"]] == sorted(world.units.values(), reverse=True)[1:3]
    r = await client.get("/api/v1/units", params={"sort": "password"}, headers=h)
    assert r.status_code == 422
    assert r.json()["error"]["details"][0]["field"] == "sort"
    r = await client.get("/api/v1/units", params={"limit": 0}, headers=h)
    assert r.status_code == 422


async def test_station_officer_cannot_filter_into_another_station(
    client: httpx.AsyncClient, world: World, headers: dict[str, dict[str, str]]
) -> None:
    r = await client.get(
        "/api/v1/units", params={"station_id": world.station_b}, headers=headers["station_officer"]
    )
    assert r.status_code == 200
    assert r.json() == {"items": [], "total": 0}


async def test_bad_credit_code_is_refused_with_its_field_and_nothing_is_written(
    client: httpx.AsyncClient, db: AsyncSession, world: World, headers: dict[str, dict[str, str]]
) -> None:
    body = _new_unit(world, world.station_a) | {"credit_code": "91330502MA2B3C4D5X"}
    r = await client.post("/api/v1/units", json=body, headers=headers["bureau_admin"])
    assert r.status_code == 422
    err = r.json()["error"]
    assert err["code"] == "validation_error"
    assert [d["field"] for d in err["details"]] == ["credit_code"]
    assert await db.scalar(select(func.count()).select_from(Unit)) == 5


async def test_injected_fields_are_refused(
    client: httpx.AsyncClient, world: World, headers: dict[str, dict[str, str]]
) -> None:
    body = _new_unit(world, world.station_a) | {"id": 999, "liaison_officer_id": 1}
    r = await client.post("/api/v1/units", json=body, headers=headers["bureau_admin"])
    assert r.status_code == 422
    assert {d["field"] for d in r.json()["error"]["details"]} == {"id", "liaison_officer_id"}


async def test_duplicate_credit_code_and_foreign_service_point(
    client: httpx.AsyncClient, db: AsyncSession, world: World, headers: dict[str, dict[str, str]]
) -> None:
    existing = await db.scalar(select(Unit.credit_code).where(Unit.id == world.units["a1"]))
    h = headers["bureau_admin"]
    r = await client.post(
        "/api/v1/units", json=_new_unit(world, world.station_a) | {"credit_code": existing}, headers=h
    )
    assert (r.status_code, r.json()["error"]["code"]) == (422, "duplicate_credit_code")
    r = await client.post(
        "/api/v1/units", json=_new_unit(world, world.station_a) | {"service_point_id": world.sp_b}, headers=h
    )
    assert (r.status_code, r.json()["error"]["details"][0]["field"]) == (422, "service_point_id")
    r = await client.post(
        "/api/v1/units", json=_new_unit(world, world.station_a) | {"category_code": "casino"}, headers=h
    )
    assert r.json()["error"]["code"] == "validation_error"
    assert r.json()["error"]["details"][0]["field"] == "category_code"


async def test_update_audits_changed_fields_and_refuses_out_of_scope(
    client: httpx.AsyncClient, db: AsyncSession, world: World, headers: dict[str, dict[str, str]]
) -> None:
    a1 = world.units["a1"]
    r = await client.patch(
        f"/api/v1/units/{a1}",
        json={"employee_count": 120, "above_scale": True},
        headers=headers["station_officer"],
    )
    assert r.status_code == 200
    assert (r.json()["employee_count"], r.json()["above_scale"]) == (120, True)
    row = await db.scalar(select(AuditLog).where(AuditLog.action == "unit.update"))
    assert row is not None
    assert row.changes == {"employee_count": [50, 120], "above_scale": [False, True]}
    assert row.actor_name == "station_officer"
    r = await client.patch(
        f"/api/v1/units/{world.units['b1']}", json={"employee_count": 1}, headers=headers["station_officer"]
    )
    assert r.status_code == 404
    r = await client.patch(
        f"/api/v1/units/{a1}", json={"employee_count": 1}, headers=headers["unit_security"]
    )
    assert r.status_code == 403
    r = await client.patch(f"/api/v1/units/{a1}", json={"name": None}, headers=headers["bureau_admin"])
    assert (r.status_code, r.json()["error"]["details"][0]["field"]) == (422, "name")
    # Moving a unit to another station drops its old station's service point.
    r = await client.patch(
        f"/api/v1/units/{a1}", json={"station_id": world.station_b}, headers=headers["bureau_admin"]
    )
    assert (r.json()["station_id"], r.json()["service_point_id"]) == (world.station_b, None)
    r = await client.patch(
        f"/api/v1/units/{a1}", json={"station_id": world.station_a}, headers=headers["station_officer"]
    )
    assert r.status_code == 404  # the unit is no longer in this officer's station


async def test_phones_are_masked_and_reveal_is_audited_for_allowed_roles_only(
    client: httpx.AsyncClient, db: AsyncSession, world: World, headers: dict[str, dict[str, str]]
) -> None:
    a1, c1 = world.units["a1"], world.contacts["a1"]
    for who in ROLES:
        if who == "mediator":
            continue
        detail = await client.get(f"/api/v1/units/{a1}", headers=headers[who])
        assert detail.json()["contacts"][0]["phone"] == "138****5678", who
        assert "13812345678" not in detail.text
    url = f"/api/v1/units/{a1}/contacts/{c1}/reveal"
    for who in ("unit_security", "service_point_staff"):
        assert (await client.post(url, headers=headers[who])).status_code == 403
    assert (await client.post(url, headers=headers["station_officer_b"])).status_code == 404
    r = await client.post(url, headers=headers["liaison_officer"])
    assert r.status_code == 200
    assert r.json()["phone"] == "13812345678"
    assert r.headers["cache-control"] == "no-store"
    reveals = (await db.scalars(select(AuditLog).where(AuditLog.action == "personal_data.reveal"))).all()
    assert [(x.actor_name, x.entity_id) for x in reveals] == [("liaison_officer", str(c1))]


async def test_contacts_and_liaison_assignment(
    client: httpx.AsyncClient, db: AsyncSession, world: World, headers: dict[str, dict[str, str]]
) -> None:
    a2 = world.units["a2"]
    r = await client.post(
        f"/api/v1/units/{a2}/contacts",
        json={"name": "李四", "role": "safety_advisor", "phone": "+86 139-0000-1234"},
        headers=headers["service_point_staff"],
    )
    assert r.status_code == 403
    r = await client.post(
        f"/api/v1/units/{a2}/contacts",
        json={"name": "李四", "role": "safety_advisor", "phone": "139-0000-1234"},
        headers=headers["station_officer"],
    )
    assert (r.status_code, r.json()["phone"]) == (201, "139****1234")
    r = await client.post(
        f"/api/v1/units/{a2}/contacts",
        json={"name": "王五", "role": "safety_advisor", "phone": "12345"},
        headers=headers["station_officer"],
    )
    assert (r.status_code, r.json()["error"]["details"][0]["field"]) == (422, "phone")
    liaison = world.users["liaison_officer"].id
    r = await client.put(
        f"/api/v1/units/{a2}/liaison", json={"officer_id": liaison}, headers=headers["station_officer"]
    )
    assert r.json()["liaison_officer_id"] == liaison
    seen = await client.get("/api/v1/units", headers=headers["liaison_officer"])
    assert {u["id"] for u in seen.json()["items"]} == world.unit_ids("a1", "a2")
    r = await client.put(
        f"/api/v1/units/{world.units['b1']}/liaison",
        json={"officer_id": liaison},
        headers=headers["bureau_admin"],
    )
    assert (r.status_code, r.json()["error"]["details"][0]["code"]) == (422, "station_mismatch")
    r = await client.put(
        f"/api/v1/units/{a2}/liaison",
        json={"officer_id": world.users["mediator"].id},
        headers=headers["bureau_admin"],
    )
    assert r.json()["error"]["details"][0]["code"] == "not_a_liaison_officer"
    r = await client.put(
        f"/api/v1/units/{a2}/liaison", json={"officer_id": None}, headers=headers["station_officer"]
    )
    assert r.json()["liaison_officer_id"] is None


async def test_stations_and_service_points_are_scoped(
    client: httpx.AsyncClient, world: World, headers: dict[str, dict[str, str]]
) -> None:
    r = await client.get("/api/v1/stations", headers=headers["bureau_admin"])
    assert {(s["name"], s["unit_count"]) for s in r.json()["items"]} == {("织北派出所", 3), ("织南派出所", 2)}
    r = await client.get("/api/v1/stations", headers=headers["station_officer"])
    assert [s["id"] for s in r.json()["items"]] == [world.station_a]
    assert (
        await client.get(f"/api/v1/stations/{world.station_b}", headers=headers["station_officer"])
    ).status_code == 404
    r = await client.get("/api/v1/stations", headers=headers["unit_security"])
    assert [(s["id"], s["unit_count"]) for s in r.json()["items"]] == [(world.station_a, 1)]
    r = await client.get("/api/v1/service-points", headers=headers["service_point_staff"])
    assert [s["id"] for s in r.json()["items"]] == [world.sp_a]
    r = await client.get("/api/v1/service-points", headers=headers["mediator"])
    assert r.json()["total"] == 0
    r = await client.get("/api/v1/unit-categories", headers=headers["mediator"])
    assert r.json()["total"] == 11


async def test_unauthenticated_requests_are_refused(client: httpx.AsyncClient, world: World) -> None:
    for url in ("/api/v1/units", "/api/v1/stations", f"/api/v1/units/{world.units['a1']}"):
        r = await client.get(url)
        assert r.status_code == 401
        assert r.json()["error"]["code"] == "not_authenticated"
    r = await client.get("/api/v1/units", headers={"Authorization": "Bearer forged"})
    assert (r.status_code, r.json()["error"]["code"]) == (401, "invalid_token")
