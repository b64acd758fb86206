"""An inspection's failed items become hazards; the unit fixes, the officer rejects, then verifies;
every step is on the timeline and in the audit log."""

from __future__ import annotations

import datetime as dt

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from eqian.core.audit import AuditLog
from eqian.hazards.models import Hazard, Inspection, InspectionResult
from tests.hazards.helpers import API_H, API_I, make_hz_world


async def _actions(db: AsyncSession, entity: str, entity_id: int) -> list[str]:
    rows = await db.scalars(
        select(AuditLog.action)
        .where(AuditLog.entity == entity, AuditLog.entity_id == str(entity_id))
        .order_by(AuditLog.id)
    )
    return list(rows)


async def test_inspection_to_verified_hazard(client: httpx.AsyncClient, db: AsyncSession) -> None:
    hz = await make_hz_world(db)
    a1 = hz.world.units["a1"]
    items = hz.items["garment"]
    by_code = {i.code: i for i in items}
    results = [{"item_id": i.id, "result": "pass"} for i in items]
    for r in results:
        if r["item_id"] == by_code["three_in_one"].id:
            r.update(result="fail", note="三楼住人")
        if r["item_id"] == by_code["extinguishers"].id:
            r["result"] = "fail"
        if r["item_id"] == by_code["hot_work"].id:
            r["result"] = "na"

    resp = await client.post(
        API_I, json={"unit_id": a1, "results": results}, headers=hz.headers["station_officer"]
    )
    assert resp.status_code == 201, resp.text
    inspection = resp.json()
    assert inspection["kind"] == "inspection"
    assert inspection["inspector_id"] == hz.world.users["station_officer"].id
    assert [r["result"] for r in inspection["results"]].count("fail") == 2
    assert len(inspection["hazard_ids"]) == 2
    assert await db.scalar(select(func.count()).select_from(InspectionResult)) == len(items)

    hazards = {h.item_id: h for h in await db.scalars(select(Hazard))}
    critical = hazards[by_code["three_in_one"].id]
    medium = hazards[by_code["extinguishers"].id]
    assert critical.severity == "critical"
    assert critical.description == "无“三合一”（住宿/生产/仓储同楼）：三楼住人"
    assert critical.deadline - critical.found_at == dt.timedelta(days=1)
    assert medium.deadline - medium.found_at == dt.timedelta(days=7)
    assert await _actions(db, "hz_inspection", inspection["id"]) == ["hazards.inspection.create"]

    url = f"{API_H}/{critical.id}"
    # Only the unit submits evidence; an officer cannot review before that.
    assert (
        await client.post(f"{url}/evidence", json={"note": "x"}, headers=hz.headers["station_officer"])
    ).status_code == 403
    review = await client.post(
        f"{url}/review", json={"decision": "verify"}, headers=hz.headers["station_officer"]
    )
    assert review.status_code == 409
    # Another unit's staff cannot even see it.
    assert (
        await client.post(f"{url}/evidence", json={"note": "x"}, headers=hz.headers["unit_security_b1"])
    ).status_code == 404

    resp = await client.post(
        f"{url}/evidence", json={"note": "住宿已搬出"}, headers=hz.headers["unit_security"]
    )
    assert resp.status_code == 200
    assert resp.json()["status"] == "fix_submitted"
    resp = await client.post(
        f"{url}/review", json={"decision": "reject"}, headers=hz.headers["station_officer"]
    )
    assert resp.status_code == 422  # a rejection needs its reason
    resp = await client.post(
        f"{url}/review",
        json={"decision": "reject", "reason": "仍有床铺"},
        headers=hz.headers["liaison_officer"],
    )
    assert resp.status_code == 200
    assert resp.json()["status"] == "open"
    resp = await client.post(
        f"{url}/review", json={"decision": "verify"}, headers=hz.headers["station_officer"]
    )
    assert resp.status_code == 409  # open again: nothing to review
    resp = await client.post(
        f"{url}/evidence", json={"note": "床铺已拆除"}, headers=hz.headers["unit_security"]
    )
    assert resp.status_code == 200
    resp = await client.post(
        f"{url}/review", json={"decision": "verify"}, headers=hz.headers["unit_security"]
    )
    assert resp.status_code == 403
    resp = await client.post(
        f"{url}/review", json={"decision": "verify"}, headers=hz.headers["station_officer"]
    )
    body = resp.json()
    assert resp.status_code == 200
    assert body["status"] == "verified"
    assert body["verified_at"]
    assert [e["action"] for e in body["events"]] == [
        "found",
        "fix_submitted",
        "rejected",
        "fix_submitted",
        "verified",
    ]
    assert body["events"][2]["note"] == "仍有床铺"
    assert await _actions(db, "hz_hazard", critical.id) == [
        "hazards.hazard.fix_submitted",
        "hazards.hazard.rejected",
        "hazards.hazard.fix_submitted",
        "hazards.hazard.verified",
    ]
    listing = await client.get(API_H, params={"status": "verified"}, headers=hz.headers["unit_security"])
    assert [h["id"] for h in listing.json()["items"]] == [critical.id]


async def test_self_inspection_and_refusals(client: httpx.AsyncClient, db: AsyncSession) -> None:
    hz = await make_hz_world(db)
    a1, a2 = hz.world.units["a1"], hz.world.units["a2"]
    garment = [{"item_id": i.id, "result": "pass"} for i in hz.items["garment"]]
    resp = await client.post(
        API_I, json={"unit_id": a1, "results": garment}, headers=hz.headers["unit_security"]
    )
    assert resp.status_code == 201
    assert resp.json()["kind"] == "self_inspection"
    # Not its unit: 404; a role that does not inspect: 403; a market item on a garment unit: 422.
    market = [{"item_id": i.id, "result": "pass"} for i in hz.items["market"]]
    assert (
        await client.post(API_I, json={"unit_id": a2, "results": market}, headers=hz.headers["unit_security"])
    ).status_code == 404
    assert (
        await client.post(
            API_I, json={"unit_id": a1, "results": garment}, headers=hz.headers["service_point_staff"]
        )
    ).status_code == 403
    assert (
        await client.post(
            API_I, json={"unit_id": a1, "results": market}, headers=hz.headers["station_officer"]
        )
    ).status_code == 422
    dup = [*garment, garment[0]]
    assert (
        await client.post(API_I, json={"unit_id": a1, "results": dup}, headers=hz.headers["station_officer"])
    ).status_code == 422
    bad = await client.post(
        API_I, json={"unit_id": a1, "results": garment, "kind": "x"}, headers=hz.headers["station_officer"]
    )
    assert bad.status_code == 422
    garbage = await client.post(
        API_I,
        content=b"{not json",
        headers={**hz.headers["station_officer"], "content-type": "application/json"},
    )
    assert garbage.status_code == 422
    assert await db.scalar(select(func.count()).select_from(Inspection)) == 1
    # A property unit (no list of its own) is inspected against the generic list.
    form = await client.get(f"/hazards/inspect/{hz.world.units['a3']}", headers=hz.headers["station_officer"])
    assert form.status_code == 200
    assert all(i.text in form.text for i in hz.items["generic"])


async def test_checklist_editing(client: httpx.AsyncClient, db: AsyncSession) -> None:
    hz = await make_hz_world(db)
    url = f"{API_I}/checklist-items"
    body = {"category_code": "garment", "code": "dorm_exit", "text": "宿舍有第二安全出口", "severity": "high"}
    assert (await client.post(url, json=body, headers=hz.headers["station_officer"])).status_code == 403
    resp = await client.post(url, json=body, headers=hz.headers["bureau_admin"])
    assert resp.status_code == 201, resp.text
    new_id = resp.json()["id"]
    assert (await client.post(url, json=body, headers=hz.headers["bureau_admin"])).status_code == 409
    assert (
        await client.post(url, json={**body, "category_code": "nope"}, headers=hz.headers["bureau_admin"])
    ).status_code == 422
    listing = await client.get(url, params={"category": "garment"}, headers=hz.headers["station_officer"])
    assert new_id in [i["id"] for i in listing.json()["items"]]
    assert (
        await client.post(f"{url}/{new_id}/retire", headers=hz.headers["bureau_admin"])
    ).status_code == 200
    listing = await client.get(url, params={"category": "garment"}, headers=hz.headers["station_officer"])
    assert new_id not in [i["id"] for i in listing.json()["items"]]
    assert (await client.post(f"{url}/999999/retire", headers=hz.headers["bureau_admin"])).status_code == 404
