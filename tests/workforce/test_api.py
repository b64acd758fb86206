"""Workforce API: scope for every role, masking, reveal audit, one person across units, validation."""

from __future__ import annotations

import datetime as dt
import json

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from eqian.core.accounts import Role, User
from eqian.core.audit import AuditLog
from eqian.organizations.models import JointZone, Unit
from eqian.workforce.models import Employment, Person
from tests.factories import _HASH, World, bearer, make_world
from tests.scoped import ScopedEndpoints, check_scoped_endpoints
from tests.workforce.helpers import TODAY, assert_no_pii, headers_for, hire, hire_body, rid

LABELS = ("a1", "a2", "a3", "b1", "b2")


async def _count(db: AsyncSession) -> int:
    return int(await db.scalar(select(func.count()).select_from(Employment)) or 0)


async def _partner(db: AsyncSession, w: World) -> User:
    """A partner agency officer whose joint zone holds unit a1: the zone gives no worker access."""
    zone = JointZone(
        code="qiaolou", name="乔溇", partner_agency="渔政", station_id=w.station_a, polygon=[[0, 0]]
    )
    db.add(zone)
    await db.flush()
    unit = await db.get(Unit, w.units["a1"])
    assert unit is not None
    unit.joint_zone_id = zone.id
    user = User(
        username="partner_officer",
        display_name="p",
        password_hash=_HASH,
        role=Role.PARTNER_OFFICER.value,
        zone_id=zone.id,
    )
    db.add(user)
    await db.commit()
    w.users["partner_officer"] = user
    return user


async def _staffed(
    db: AsyncSession, client: httpx.AsyncClient
) -> tuple[World, dict[str, dict[str, str]], dict[str, int]]:
    w = await make_world(db)
    await _partner(db, w)
    headers = await headers_for(db, w, ("partner_officer",))
    ids = {}
    for n, label in enumerate(LABELS):
        ids[label] = int(
            str((await hire(client, headers["bureau_admin"], hire_body(w.units[label], n)))["id"])
        )
    return w, headers, ids


async def test_every_role_sees_exactly_its_units_workers(db: AsyncSession, client: httpx.AsyncClient) -> None:
    w, headers, ids = await _staffed(db, client)

    def of(*labels: str) -> set[int]:
        return {ids[x] for x in labels}

    unit_of_creator = {
        "bureau_admin": "b2",
        "station_officer": "a2",
        "station_officer_b": "a1",  # out of their station: 404
        "liaison_officer": "a1",
        "unit_security": "a1",
        "mediator": "a1",
        "partner_officer": "a1",  # in their zone, but zones give no worker access
        "service_point_staff": "a1",  # sees, may not write
    }
    serial = iter(range(100, 200))
    spec = ScopedEndpoints(
        list_url="/api/v1/workers",
        detail_url=lambda i: f"/api/v1/workers/{i}",
        all_ids=of(*LABELS),
        visible={
            "bureau_admin": of(*LABELS),
            "station_officer": of("a1", "a2", "a3"),
            "station_officer_b": of("b1", "b2"),
            "liaison_officer": of("a1"),
            "unit_security": of("a1"),
            "service_point_staff": of("a1", "a2"),
            "mediator": set(),
            "partner_officer": set(),
        },
        create_url="/api/v1/workers/hires",
        create_body=lambda who: hire_body(w.units[unit_of_creator[who]], next(serial)),
        create_status={
            "bureau_admin": 201,
            "station_officer": 201,
            "station_officer_b": 404,
            "liaison_officer": 201,
            "unit_security": 201,
            "mediator": 404,
            "partner_officer": 404,
            "service_point_staff": 403,
        },
        count=lambda: _count(db),
    )
    await check_scoped_endpoints(client, headers, spec)


async def test_no_unit_or_station_reaches_anothers_workers(
    db: AsyncSession, client: httpx.AsyncClient
) -> None:
    w, headers, ids = await _staffed(db, client)
    b1 = await client.get(f"/api/v1/workers/{ids['b1']}", headers=headers["bureau_admin"])
    b1_person = b1.json()["person_id"]
    a2 = (await client.get(f"/api/v1/workers/{ids['a2']}", headers=headers["bureau_admin"])).json()
    for who, emp, person, unit in (
        ("unit_security", ids["a2"], a2["person_id"], w.units["a2"]),
        ("station_officer", ids["b1"], b1_person, w.units["b1"]),
        ("station_officer_b", ids["a2"], a2["person_id"], w.units["a2"]),
        ("liaison_officer", ids["b1"], b1_person, w.units["b1"]),
    ):
        h = headers[who]
        before = await _count(db)
        checks = [
            await client.post(f"/api/v1/workers/persons/{person}/reveal", headers=h),
            await client.get(f"/api/v1/workers/persons/{person}", headers=h),
            await client.post(
                f"/api/v1/workers/{emp}/departure", json={"left_on": TODAY.isoformat()}, headers=h
            ),
            await client.put(
                f"/api/v1/workers/persons/{person}/residence",
                json={"status": "registered", "registered_on": TODAY.isoformat()},
                headers=h,
            ),
            await client.post(
                "/api/v1/workers/import",
                data={"unit_id": str(unit)},
                files={
                    "file": (
                        "hr.csv",
                        "姓名,身份证号,手机号,入职日期\n甲," + rid(900) + ",13900000900,2025-01-02\n",
                    )
                },
                headers=h,
            ),
        ]
        for resp in checks:
            assert resp.status_code == 404, (who, resp.request.url, resp.text)
            assert "织" not in resp.text  # no unit name leaks in the error
        listing = await client.get("/api/v1/workers", params={"unit_id": unit}, headers=h)
        assert listing.json() == {"items": [], "total": 0}
        compliance = await client.get("/api/v1/workers/compliance", params={"unit_id": unit}, headers=h)
        assert compliance.json()["rows"] == []
        assert await _count(db) == before
    untouched = await db.get(Employment, ids["b1"])
    assert untouched is not None
    assert untouched.left_on is None


async def test_responses_and_audit_never_hold_an_unmasked_identifier(
    db: AsyncSession, client: httpx.AsyncClient
) -> None:
    w, headers, ids = await _staffed(db, client)
    person = (await client.get(f"/api/v1/workers/{ids['a1']}", headers=headers["bureau_admin"])).json()[
        "person_id"
    ]
    await client.put(
        f"/api/v1/workers/persons/{person}/residence",
        json={
            "status": "permit_issued",
            "registered_on": TODAY.isoformat(),
            "permit_no": "P-1",
            "permit_expires_on": "2030-01-01",
        },
        headers=headers["unit_security"],
    )
    await client.post(
        f"/api/v1/workers/{ids['a2']}/departure",
        json={"left_on": TODAY.isoformat()},
        headers=headers["bureau_admin"],
    )
    for who, h in headers.items():
        for url in (
            "/api/v1/workers?limit=500",
            f"/api/v1/workers/{ids['a1']}",
            f"/api/v1/workers/persons/{person}",
            "/api/v1/workers/compliance",
            "/api/v1/workers/compliance?by=station",
        ):
            resp = await client.get(url, headers=h)
            assert resp.status_code in (200, 404), (who, url, resp.text)
            assert_no_pii(resp.text)
    # a refused hire does not echo the number either
    bad = await client.post(
        "/api/v1/workers/hires",
        json=hire_body(w.units["a1"], 1, id_number=rid(1)[:17] + "0"),
        headers=headers["bureau_admin"],
    )
    assert bad.status_code == 422
    rows = (await db.scalars(select(AuditLog))).all()
    assert rows
    assert_no_pii(json.dumps([r.changes for r in rows], ensure_ascii=False))


async def test_reveal_is_for_officers_and_audited(db: AsyncSession, client: httpx.AsyncClient) -> None:
    _w, headers, ids = await _staffed(db, client)
    person = (await client.get(f"/api/v1/workers/{ids['a1']}", headers=headers["bureau_admin"])).json()[
        "person_id"
    ]

    async def reveals() -> int:
        return int(
            await db.scalar(
                select(func.count()).select_from(AuditLog).where(AuditLog.action == "personal_data.reveal")
            )
            or 0
        )

    for who, status in (
        ("unit_security", 403),
        ("service_point_staff", 403),
        ("mediator", 404),
        ("partner_officer", 404),
        ("station_officer_b", 404),
    ):
        resp = await client.post(f"/api/v1/workers/persons/{person}/reveal", headers=headers[who])
        assert resp.status_code == status, (who, resp.text)
        assert_no_pii(resp.text)
    assert await reveals() == 0
    for n, who in enumerate(("bureau_admin", "station_officer", "liaison_officer"), start=1):
        resp = await client.post(f"/api/v1/workers/persons/{person}/reveal", headers=headers[who])
        assert resp.status_code == 200, (who, resp.text)
        assert resp.json()["id_number"] == rid(0)
        assert resp.json()["phone"] == "13900000000"
        assert await reveals() == n
    row = await db.scalar(
        select(AuditLog).where(AuditLog.action == "personal_data.reveal").order_by(AuditLog.seq.desc())
    )
    assert row is not None
    assert row.actor_name == "liaison_officer"
    assert row.entity == "person"
    assert row.entity_id == str(person)


async def test_one_person_across_two_units(db: AsyncSession, client: httpx.AsyncClient) -> None:
    w = await make_world(db)
    headers = await headers_for(db, w)
    admin = headers["bureau_admin"]
    first = await hire(client, admin, hire_body(w.units["a1"], 7, hired_on=TODAY - dt.timedelta(days=100)))
    again = await client.post(
        "/api/v1/workers/hires", json=hire_body(w.units["b1"], 7), headers=headers["station_officer_b"]
    )
    assert again.status_code == 409
    assert again.json()["error"]["message"] == "仍在其他单位在职"
    same = await client.post("/api/v1/workers/hires", json=hire_body(w.units["a1"], 7), headers=admin)
    assert same.status_code == 409
    left = await client.post(
        f"/api/v1/workers/{first['id']}/departure",
        json={"left_on": (TODAY - dt.timedelta(days=10)).isoformat()},
        headers=admin,
    )
    assert left.status_code == 200
    assert left.json()["left_on"] == (TODAY - dt.timedelta(days=10)).isoformat()
    twice = await client.post(
        f"/api/v1/workers/{first['id']}/departure", json={"left_on": TODAY.isoformat()}, headers=admin
    )
    assert twice.status_code == 409
    second = await hire(client, headers["station_officer_b"], hire_body(w.units["b1"], 7, name="新名字"))
    assert second["person_id"] == first["person_id"]
    assert await db.scalar(select(func.count()).select_from(Person)) == 1
    person = (await client.get(f"/api/v1/workers/persons/{first['person_id']}", headers=admin)).json()
    assert [e["unit_id"] for e in person["employments"]] == [w.units["b1"], w.units["a1"]]
    assert person["name"] == "新名字"
    # each side sees only its own stay
    mine = (
        await client.get(f"/api/v1/workers/persons/{first['person_id']}", headers=headers["unit_security"])
    ).json()
    assert [e["id"] for e in mine["employments"]] == [first["id"]]
    theirs = (
        await client.get(
            f"/api/v1/workers/persons/{first['person_id']}", headers=headers["station_officer_b"]
        )
    ).json()
    assert [e["id"] for e in theirs["employments"]] == [second["id"]]


async def test_bad_identifiers_are_422_naming_the_field(db: AsyncSession, client: httpx.AsyncClient) -> None:
    w = await make_world(db)
    h = await bearer(db, w.users["bureau_admin"])
    for field, value in (
        ("id_number", rid(3)[:17] + ("0" if rid(3)[17] != "0" else "1")),
        ("id_number", "12345"),
        ("phone", "12345678901"),
        ("hired_on", "2025-02-30"),
    ):
        resp = await client.post(
            "/api/v1/workers/hires", json=hire_body(w.units["a1"], 3, **{field: value}), headers=h
        )
        assert resp.status_code == 422, (field, resp.text)
        assert [d["field"] for d in resp.json()["error"]["details"]] == [field]
    extra = await client.post(
        "/api/v1/workers/hires", json={**hire_body(w.units["a1"], 3), "status": "registered"}, headers=h
    )
    assert extra.status_code == 422
    early = await client.post(
        f"/api/v1/workers/{(await hire(client, h, hire_body(w.units['a1'], 3)))['id']}/departure",
        json={"left_on": "2000-01-01"},
        headers=h,
    )
    assert early.status_code == 422
    assert early.json()["error"]["details"][0]["field"] == "left_on"
    huge = await client.get("/api/v1/workers/99999999999", headers=h)
    assert huge.status_code == 422
    assert await _count(db) == 1
