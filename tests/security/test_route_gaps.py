"""Routes no other test exercised with a successful answer, found by the route-coverage observer
(tests/security/observer.py): each one here is driven as its user would, and what it did is checked."""

from __future__ import annotations

import datetime as dt

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from eqian.core.audit import AuditLog
from eqian.mediation.models import MediationCase
from tests.factories import bearer, make_world, sign_in
from tests.incidents.helpers import add_incident
from tests.mediation.helpers import add_case, make_med_world
from tests.messaging.helpers import make_msg_world

HTML = {"Accept": "text/html"}
AT = dt.datetime(2026, 3, 2, 2, tzinfo=dt.UTC)


async def test_api_docs_point_at_the_published_document(client: httpx.AsyncClient, db: AsyncSession) -> None:
    docs = await client.get("/api/docs")
    assert docs.status_code == 200
    assert "/openapi.json" in docs.text
    assert "swagger" in docs.text.lower()
    redirect = await client.get("/docs/oauth2-redirect")
    assert redirect.status_code == 200
    assert "oauth2" in redirect.text.lower()


async def test_a_station_officer_reads_their_station_and_not_another(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    w = await make_world(db)
    h = await bearer(db, w.users["station_officer"])
    r = await client.get(f"/api/v1/stations/{w.station_a}", headers=h)
    assert r.status_code == 200
    assert (r.json()["name"], r.json()["unit_count"], r.json()["service_point_count"]) == ("织北派出所", 3, 1)
    assert (await client.get(f"/api/v1/stations/{w.station_b}", headers=h)).status_code == 404


async def test_a_station_builds_a_mediation_team_with_members(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    w = await make_world(db)
    h = await bearer(db, w.users["station_officer"])
    r = await client.post(
        "/api/v1/mediation/teams",
        json={"name": "织北劳资调解室", "kind": "community", "specialties": ["labor", "processing_fee"]},
        headers=h,
    )
    assert r.status_code == 201, r.text
    team = r.json()
    assert (team["station_id"], team["specialties"]) == (w.station_a, ["labor", "processing_fee"])
    r = await client.post(
        f"/api/v1/mediation/teams/{team['id']}/members",
        json={"name": "陈律师", "specialties": ["labor"]},
        headers=h,
    )
    assert r.status_code == 201, r.text
    assert (r.json()["team_id"], r.json()["name"], r.json()["active"]) == (team["id"], "陈律师", True)
    listed = (await client.get("/api/v1/mediation/teams", headers=h)).json()["items"]
    mine = next(t for t in listed if t["id"] == team["id"])
    assert [m["name"] for m in mine["members"]] == ["陈律师"]
    # Another station may not staff this station's team.
    other = await bearer(db, w.users["station_officer_b"])
    r = await client.post(
        f"/api/v1/mediation/teams/{team['id']}/members", json={"name": "冒名者"}, headers=other
    )
    assert r.status_code in (403, 404)


async def test_a_case_is_reassigned_by_api_and_by_the_case_page(
    client: httpx.AsyncClient, browser: httpx.AsyncClient, db: AsyncSession
) -> None:
    mw = await make_med_world(db)
    w = mw.world
    case_id = await add_case(
        db, station_id=w.station_a, team_id=mw.teams["dajie"], opened_at=AT, dispute_type="family"
    )
    h = await bearer(db, w.users["station_officer"])
    r = await client.post(
        f"/api/v1/mediation/cases/{case_id}/assign",
        json={"team_id": mw.teams["dajie"], "member_id": mw.members["wang"]},
        headers=h,
    )
    assert r.status_code == 200, r.text
    assert (r.json()["team_id"], r.json()["member_id"]) == (mw.teams["dajie"], mw.members["wang"])
    csrf = await sign_in(db, browser, w.users["station_officer"])
    r = await browser.post(
        f"/mediation/cases/{case_id}/assign", data={"team_id": str(mw.teams["dajie"]), "csrf_token": csrf}
    )
    assert r.status_code == 303
    assert r.headers["location"] == f"/mediation/cases/{case_id}"
    case = await db.scalar(select(MediationCase).where(MediationCase.id == case_id))
    assert case is not None
    await db.refresh(case)
    # Without a named member the page picks by specialty: 李大姐 takes family disputes.
    assert case.member_id == mw.members["li"]
    assigns = (await db.scalars(select(AuditLog).where(AuditLog.action == "mediation.case.assign"))).all()
    assert len(assigns) == 2


async def test_instructions_are_listed_for_their_channel_only(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    mw = await make_msg_world(db)
    channel = mw.channels[f"station:{mw.world.station_a}"]
    deadline = dt.datetime.now(dt.UTC) + dt.timedelta(days=2)
    r = await client.post(
        "/api/v1/messaging/instructions",
        json={"channel_id": channel, "title": "做好消防检查", "deadline": deadline.isoformat()},
        headers=mw.headers["station_officer"],
    )
    assert r.status_code == 201, r.text
    iid = r.json()["id"]
    listed = await client.get(
        "/api/v1/messaging/instructions",
        params={"channel_id": channel},
        headers=mw.headers["station_officer"],
    )
    assert listed.status_code == 200
    assert ([i["id"] for i in listed.json()["items"]], listed.json()["total"]) == ([iid], 1)
    theirs = await client.get("/api/v1/messaging/instructions", headers=mw.headers["unit_security_b1"])
    assert theirs.status_code == 200
    assert theirs.json()["total"] == 0  # station B's unit is not in station A's channel


async def test_cockpit_outline_and_pages(
    client: httpx.AsyncClient, browser: httpx.AsyncClient, db: AsyncSession
) -> None:
    w = await make_world(db)
    await add_incident(db, station_id=w.station_a, unit_id=w.units["a1"], reported_at=AT)
    outline = await client.get("/api/v1/cockpit/outline", headers=await bearer(db, w.users["bureau_admin"]))
    assert outline.status_code == 200
    assert outline.json()["type"] == "FeatureCollection"
    assert outline.json()["features"]
    refused = await client.get("/api/v1/cockpit/outline", headers=await bearer(db, w.users["unit_security"]))
    assert refused.status_code == 403
    await sign_in(db, browser, w.users["bureau_admin"])
    for url in ("/cockpit", "/cockpit/big-screen", "/cockpit/drill?kpi=incidents_total&month=2026-03"):
        page = await browser.get(url)
        assert page.status_code == 200, url
        assert "text/html" in page.headers["content-type"]
        assert "警情总数" in page.text, url
    assert (await browser.get("/cockpit/drill?kpi=no_such_kpi")).status_code == 422


async def test_incident_intake_form_and_relinking_from_the_page(
    client: httpx.AsyncClient, browser: httpx.AsyncClient, db: AsyncSession
) -> None:
    w = await make_world(db)
    csrf = await sign_in(db, browser, w.users["station_officer"])
    form = await browser.get("/incidents/new")
    assert form.status_code == 200
    assert 'action="/incidents/new"' in form.text
    assert "织北派出所" in form.text
    incident = await add_incident(db, station_id=w.station_a, unit_id=w.units["a1"], reported_at=AT)
    r = await browser.post(
        f"/incidents/{incident}/link",
        data={"unit_id": str(w.units["a2"]), "reason": "报警人实为吾悦广场员工", "csrf_token": csrf},
    )
    assert r.status_code == 303
    detail = await client.get(
        f"/api/v1/incidents/{incident}", headers=await bearer(db, w.users["station_officer"])
    )
    assert detail.json()["unit_id"] == w.units["a2"]
    assert detail.json()["link_reason"] == "民警更正：报警人实为吾悦广场员工"  # kept, marked as the officer's
