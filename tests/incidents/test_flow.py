"""An incident from intake to closed: classified, linked, routed, triaged in one step, moved by the
unit's security head, closed and reopened by officers, with its timeline, events and notifications."""

from __future__ import annotations

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from eqian.core import outbox
from eqian.core.audit import AuditLog
from eqian.incidents import events
from eqian.incidents.models import Incident, IncidentOverride
from eqian.notifications.models import Notification
from tests.incidents.helpers import API, make_inc_world

WAGES = "织里贝贝童装的工人报警称老板拖欠工资三个月不发，十几个人堵在厂门口讨薪"


async def test_intake_triage_and_lifecycle(
    client: httpx.AsyncClient, db: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    iw = await make_inc_world(db)
    w = iw.world
    officer, unit_head = iw.headers["station_officer"], iw.headers["unit_security"]

    resp = await client.post(
        API,
        json={"description": WAGES, "caller_phone": "13912345678", "address": "织里镇大港路88号"},
        headers=officer,
    )
    assert resp.status_code == 201, resp.text
    inc = resp.json()
    assert inc["category"] == "labor"
    assert inc["police"] is False
    assert inc["evidence"], inc
    assert inc["unit_id"] == w.units["a1"]
    assert inc["link_method"] == "name"
    assert "贝贝童装" in inc["link_reason"]
    assert inc["route"] == "self_governance"
    assert inc["status"] == "reported"
    assert inc["caller_phone"] == "139****5678"
    assert inc["station_id"] == w.station_a

    # The unit does not see it before it is handed over; the triage queue does.
    listing = await client.get(API, headers=unit_head)
    assert listing.json()["total"] == 0
    queue = await client.get(API, params={"status": "queue"}, headers=officer)
    assert [i["id"] for i in queue.json()["items"]] == [inc["id"]]

    # A unit cannot triage; the officer accepts the suggestion in one step.
    assert (await client.post(f"{API}/{inc['id']}/triage", json={}, headers=unit_head)).status_code == 404
    triaged = await client.post(f"{API}/{inc['id']}/triage", json={"note": "同意"}, headers=officer)
    assert triaged.status_code == 200, triaged.text
    body = triaged.json()
    assert body["status"] == "assigned"
    assert body["triaged_at"]
    assert body["assigned_at"]
    again = await client.post(f"{API}/{inc['id']}/triage", json={}, headers=officer)
    assert again.status_code == 409

    # The unit's security head now sees it and moves it; it may not close it.
    assert (await client.get(API, headers=unit_head)).json()["total"] == 1
    for action, status in (("start", "in_progress"), ("resolve", "resolved")):
        r = await client.post(f"{API}/{inc['id']}/transition", json={"action": action}, headers=unit_head)
        assert r.status_code == 200, r.text
        assert r.json()["status"] == status
    r = await client.post(f"{API}/{inc['id']}/transition", json={"action": "close"}, headers=unit_head)
    assert r.status_code == 403
    r = await client.post(f"{API}/{inc['id']}/transition", json={"action": "close"}, headers=officer)
    assert r.status_code == 200
    assert r.json()["closed_at"]
    r = await client.post(f"{API}/{inc['id']}/transition", json={"action": "reopen"}, headers=officer)
    assert r.status_code == 200
    detail = r.json()
    assert detail["status"] == "in_progress"
    assert detail["reopen_count"] == 1
    assert detail["resolved_at"] is None
    assert [e["action"] for e in detail["events"]] == [
        "reported",
        "triaged",
        "assigned",
        "started",
        "resolved",
        "closed",
        "reopened",
    ]
    assert detail["events"][3]["actor_name"] == "unit_security"
    # A wrong-state move is a 409, not a change.
    r = await client.post(f"{API}/{inc['id']}/transition", json={"action": "close"}, headers=officer)
    assert r.status_code == 409

    # Outbox: reported once, changed per move; the assignment told the unit's security head.
    topics = [
        t for (t,) in (await db.execute(select(outbox.OutboxEvent.topic).order_by(outbox.OutboxEvent.id)))
    ]
    assert topics.count("incidents.reported") == 1
    assert topics.count("incidents.changed") == 5
    events.register()
    await outbox.dispatch_pending(sessionmaker)
    notes = (await db.execute(select(Notification.user_id, Notification.kind))).all()
    assert (w.users["unit_security"].id, "incidents.assigned") in notes
    actions = set(await db.scalars(select(AuditLog.action).where(AuditLog.action.like("incidents.%"))))
    assert {"incidents.incident.create", "incidents.incident.triage", "incidents.incident.start"} <= actions


async def test_triage_change_records_override_and_dispatches(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    iw = await make_inc_world(db)
    officer = iw.headers["station_officer"]
    resp = await client.post(
        API, json={"description": WAGES, "station_id": iw.world.station_a}, headers=officer
    )
    inc = resp.json()
    r = await client.post(
        f"{API}/{inc['id']}/triage",
        json={"category": "public_order", "police": True, "severity": "high"},
        headers=officer,
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["route"] == "dispatch"
    assert body["assignee_id"] == iw.user_id("station_officer")
    assert body["category_source"] == "officer"
    assert body["severity"] == "high"
    assert body["sla_hours"] == 2
    rows = (await db.execute(select(IncidentOverride.from_category, IncidentOverride.to_category))).all()
    assert rows == [("labor", "public_order")]
    # The unit's security head never sees a dispatched matter.
    assert (await client.get(f"{API}/{inc['id']}", headers=iw.headers["unit_security"])).status_code == 404
    # Self-governance without a unit is refused.
    other = await client.post(
        API,
        json={"description": "两位邻居因为楼道堆放杂物发生口角", "station_id": iw.world.station_a},
        headers=officer,
    )
    r = await client.post(
        f"{API}/{other.json()['id']}/triage", json={"route": "self_governance"}, headers=officer
    )
    assert r.status_code == 422
    assert await db.scalar(select(func.count()).select_from(Incident)) == 2


async def test_reveal_phone_is_audited_and_limited(client: httpx.AsyncClient, db: AsyncSession) -> None:
    iw = await make_inc_world(db)
    resp = await client.post(
        API,
        json={"description": WAGES, "caller_phone": "13912345678", "unit_ref": str(iw.world.units["a1"])},
        headers=iw.headers["bureau_admin"],
    )
    inc = resp.json()
    assert inc["link_method"] == "ref"
    r = await client.post(f"{API}/{inc['id']}/reveal-phone", headers=iw.headers["station_officer"])
    assert r.status_code == 200
    assert r.json() == {"caller_phone": "13912345678"}
    await client.post(f"{API}/{inc['id']}/triage", json={}, headers=iw.headers["station_officer"])
    r = await client.post(f"{API}/{inc['id']}/reveal-phone", headers=iw.headers["unit_security"])
    assert r.status_code == 403
    reveals = await db.scalar(
        select(func.count()).select_from(AuditLog).where(AuditLog.action == "personal_data.reveal")
    )
    assert reveals == 1


async def test_classify_stores_nothing(client: httpx.AsyncClient, db: AsyncSession) -> None:
    iw = await make_inc_world(db)
    r = await client.post(f"{API}/classify", json={"text": WAGES}, headers=iw.headers["unit_security"])
    assert r.status_code == 200
    body = r.json()
    assert body["category"] == "labor"
    assert body["police"] is False
    assert 0 < body["confidence"] <= 1
    assert set(body) >= {"category", "police", "confidence", "evidence", "version"}
    assert await db.scalar(select(func.count()).select_from(Incident)) == 0
    r = await client.post(f"{API}/classify", json={"text": ""}, headers=iw.headers["unit_security"])
    assert r.status_code == 422


async def test_mediation_route_opens_a_case(client: httpx.AsyncClient, db: AsyncSession) -> None:
    iw = await make_inc_world(db)
    officer = iw.headers["station_officer"]
    resp = await client.post(
        API,
        json={
            "description": "两户邻居因漏水问题发生纠纷，争吵不休",
            "caller_phone": "0572-3012345",
            "station_id": iw.world.station_a,
        },
        headers=officer,
    )
    inc = resp.json()
    r = await client.post(f"{API}/{inc['id']}/triage", json={"route": "mediation"}, headers=officer)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "assigned"
    assert body["route"] == "mediation"
    assert body["mediation_case_id"] is not None
    assert f"#{body['mediation_case_id']}" in body["events"][-1]["note"]
    case = await client.get(
        f"/api/v1/mediation/cases/{body['mediation_case_id']}", headers=iw.headers["bureau_admin"]
    )
    assert case.status_code == 200, case.text
