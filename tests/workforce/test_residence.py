"""Residence registration rules and the list filters."""

from __future__ import annotations

import datetime as dt

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from tests.factories import bearer, make_world
from tests.workforce.helpers import TODAY, hire, hire_body


async def test_residence_rules(db: AsyncSession, client: httpx.AsyncClient) -> None:
    w = await make_world(db)
    h = await bearer(db, w.users["unit_security"])
    worker = await hire(client, h, hire_body(w.units["a1"], 1))
    url = f"/api/v1/workers/persons/{worker['person_id']}/residence"
    today = TODAY.isoformat()
    for body, field in (
        ({"status": "registered"}, "registered_on"),
        (
            {"status": "registered", "registered_on": (TODAY + dt.timedelta(days=2)).isoformat()},
            "registered_on",
        ),
        ({"status": "permit_issued", "registered_on": today}, "permit_no"),
        ({"status": "permit_issued", "registered_on": today, "permit_no": "P1"}, "permit_expires_on"),
    ):
        resp = await client.put(url, json=body, headers=h)
        assert resp.status_code == 422, (body, resp.text)
        assert resp.json()["error"]["details"][0]["field"] == field
    ok = await client.put(
        url,
        json={
            "status": "permit_issued",
            "registered_on": today,
            "permit_no": "P1",
            "permit_expires_on": "2030-01-01",
        },
        headers=h,
    )
    assert ok.status_code == 200
    assert ok.json()["permit_no"] == "P1"
    reg = await client.put(
        url, json={"status": "registered", "registered_on": today, "permit_no": "P2"}, headers=h
    )
    assert reg.json() == {
        "status": "registered",
        "registered_on": today,
        "permit_no": None,
        "permit_expires_on": None,
    }
    cleared = await client.put(url, json={"status": "unregistered"}, headers=h)
    assert cleared.json()["registered_on"] is None
    staff = await bearer(db, w.users["service_point_staff"])
    assert (await client.put(url, json={"status": "unregistered"}, headers=staff)).status_code == 403
    await client.post(f"/api/v1/workers/{worker['id']}/departure", json={"left_on": today}, headers=h)
    gone = await client.put(url, json={"status": "registered", "registered_on": today}, headers=h)
    assert gone.status_code == 404  # a former employer no longer keeps the record


async def test_list_filters(db: AsyncSession, client: httpx.AsyncClient) -> None:
    w = await make_world(db)
    admin = await bearer(db, w.users["bureau_admin"])
    a = await hire(client, admin, hire_body(w.units["a1"], 1, name="张三"))
    b = await hire(client, admin, hire_body(w.units["a2"], 2, name="李四"))
    c = await hire(client, admin, hire_body(w.units["b1"], 3, name="王五"))
    await client.post(
        f"/api/v1/workers/{b['id']}/departure", json={"left_on": TODAY.isoformat()}, headers=admin
    )
    await client.put(
        f"/api/v1/workers/persons/{c['person_id']}/residence",
        json={"status": "registered", "registered_on": TODAY.isoformat()},
        headers=admin,
    )

    async def ids(**params: object) -> set[object]:
        resp = await client.get(
            "/api/v1/workers", params={k: str(v) for k, v in params.items()}, headers=admin
        )
        assert resp.status_code == 200, resp.text
        return {item["id"] for item in resp.json()["items"]}

    assert await ids(active="true") == {a["id"], c["id"]}
    assert await ids(active="false") == {b["id"]}
    assert await ids(status="registered") == {c["id"]}
    assert await ids(status="unregistered") == {a["id"], b["id"]}
    assert await ids(q="张") == {a["id"]}
    assert await ids(q="%") == set()
    assert await ids(station_id=w.station_b) == {c["id"]}
    assert await ids(unit_id=w.units["a2"]) == {b["id"]}
    bad = await client.get("/api/v1/workers", params={"status": "bogus"}, headers=admin)
    assert bad.status_code == 422
