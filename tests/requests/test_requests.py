"""Enterprise requests: routing by kind (department or the unit's liaison officer), SLA, reply,
resolution, one rating; scope for every role; the overdue job; statistics and facts by hand."""

from __future__ import annotations

import datetime as dt

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from eqian.core import outbox
from eqian.core.facts import Fact
from eqian.core.outbox import OutboxEvent
from eqian.notifications.models import Notification
from eqian.requests import events, facts, jobs
from eqian.requests.models import EnterpriseRequest
from tests.mediation.helpers import make_med_world
from tests.scoped import ScopedEndpoints, check_scoped_endpoints

API = "/api/v1/requests"
UTC = dt.UTC


async def test_request_lifecycle(
    client: httpx.AsyncClient, db: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    mw = await make_med_world(db)
    w, h = mw.world, mw.headers
    # Fraud-prevention training goes to the anti-fraud centre, with a 10-day SLA.
    r = await client.post(
        API,
        json={
            "kind": "fraud_training",
            "title": "申请反诈培训",
            "body": "新进员工 80 人，希望本月安排一次反诈讲座",
        },
        headers=h["unit_security"],
    )
    assert r.status_code == 201, r.text
    req = r.json()
    assert req["unit_id"] == w.units["a1"]
    assert req["department_name"] == "反诈中心"
    assert req["assignee_id"] is None
    due = dt.datetime.fromisoformat(req["due_at"]) - dt.datetime.fromisoformat(req["submitted_at"])
    assert due == dt.timedelta(days=10)
    # "other" has no department: it goes to the unit's liaison officer.
    r = await client.post(
        API, json={"kind": "other", "title": "门口路灯坏了", "body": "请协调"}, headers=h["unit_security"]
    )
    other = r.json()
    assert other["department_id"] is None
    assert other["assignee_id"] == w.users["liaison_officer"].id
    # A unit cannot submit for another unit; an officer must name a unit in scope.
    r = await client.post(
        API,
        json={"kind": "traffic", "title": "x", "body": "y", "unit_id": w.units["b1"]},
        headers=h["unit_security"],
    )
    assert r.status_code == 404
    r = await client.post(
        API, json={"kind": "traffic", "title": "x", "body": "y"}, headers=h["station_officer"]
    )
    assert r.status_code == 422
    r = await client.post(
        API,
        json={"kind": "traffic", "title": "x", "body": "y", "unit_id": w.units["b1"]},
        headers=h["station_officer"],
    )
    assert r.status_code == 404
    r = await client.post(
        API, json={"kind": "parking", "title": "x", "body": "y"}, headers=h["unit_security"]
    )
    assert r.status_code == 422

    rid = req["id"]
    # Rating before resolution: refused. The unit cannot reply or resolve.
    r = await client.post(f"{API}/{rid}/rate", json={"rating": 5}, headers=h["unit_security"])
    assert r.status_code == 409
    r = await client.post(f"{API}/{rid}/resolve", json={"resolution": "x"}, headers=h["unit_security"])
    assert r.status_code == 403
    r = await client.post(
        f"{API}/{rid}/reply", json={"text": "已安排 3 月 12 日下午"}, headers=h["liaison_officer"]
    )
    assert r.status_code == 200
    assert r.json()["status"] == "in_progress"
    r = await client.post(
        f"{API}/{rid}/resolve", json={"resolution": "讲座已开展，82 人参加"}, headers=h["station_officer"]
    )
    assert r.status_code == 200
    assert r.json()["status"] == "resolved"
    r = await client.post(f"{API}/{rid}/reply", json={"text": "again"}, headers=h["station_officer"])
    assert r.status_code == 409
    # Rate once, 1-5, by the unit only.
    r = await client.post(f"{API}/{rid}/rate", json={"rating": 6}, headers=h["unit_security"])
    assert r.status_code == 422
    r = await client.post(f"{API}/{rid}/rate", json={"rating": 5}, headers=h["station_officer"])
    assert r.status_code == 403
    r = await client.post(
        f"{API}/{rid}/rate", json={"rating": 5, "comment": "很及时"}, headers=h["unit_security"]
    )
    assert r.status_code == 200
    assert r.json()["rating"] == 5
    r = await client.post(f"{API}/{rid}/rate", json={"rating": 1}, headers=h["unit_security"])
    assert r.status_code == 409
    detail = (await client.get(f"{API}/{rid}", headers=h["unit_security"])).json()
    assert [e["action"] for e in detail["events"]] == ["submitted", "replied", "resolved", "rated"]

    # Outbox: submitted and resolved carry the contract's payload; the handlers notify.
    topics = [
        (e.topic, e.payload["request_id"])
        for e in await db.scalars(
            select(OutboxEvent).where(OutboxEvent.topic.like("requests.%")).order_by(OutboxEvent.id)
        )
    ]
    assert topics == [
        ("requests.submitted", rid),
        ("requests.submitted", other["id"]),
        ("requests.resolved", rid),
    ]
    events.register()
    while await outbox.dispatch_pending(sessionmaker) > 0:
        pass
    links = dict(
        (await db.execute(select(Notification.user_id, func.count()).group_by(Notification.user_id))).all()
    )
    assert links[w.users["unit_security"].id] == 1  # resolved, please rate
    assert links[w.users["liaison_officer"].id] >= 1  # the "other" request is theirs


async def test_request_scope(client: httpx.AsyncClient, db: AsyncSession) -> None:
    mw = await make_med_world(db)
    w = mw.world
    ids: dict[str, int] = {}
    now = dt.datetime.now(UTC)
    for label, unit_id in w.units.items():
        row = EnterpriseRequest(
            unit_id=unit_id,
            station_id=w.station_a if label.startswith("a") else w.station_b,
            kind="traffic",
            title=f"{label} 交通",
            body="x",
            submitted_at=now,
            due_at=now + dt.timedelta(days=7),
        )
        db.add(row)
        await db.flush()
        ids[label] = row.id
    await db.commit()
    units_of = {
        "bureau_admin": ("a1", "a2", "a3", "b1", "b2"),
        "station_officer": ("a1", "a2", "a3"),
        "station_officer_b": ("b1", "b2"),
        "liaison_officer": ("a1",),
        "unit_security": ("a1",),
        "unit_security_b1": ("b1",),
        "mediator": (),
        "service_point_staff": ("a1", "a2"),
    }

    async def count() -> int:
        return await db.scalar(select(func.count()).select_from(EnterpriseRequest)) or 0

    await check_scoped_endpoints(
        client,
        mw.headers,
        ScopedEndpoints(
            list_url=API,
            detail_url=lambda i: f"{API}/{i}",
            all_ids=set(ids.values()),
            visible={who: {ids[u] for u in units} for who, units in units_of.items()},
            create_url=API,
            create_body=lambda who: {
                "kind": "permits",
                "title": "办证",
                "body": "x",
                "unit_id": w.units["a1"],
            },
            create_status={
                "bureau_admin": 201,
                "station_officer": 201,
                "station_officer_b": 404,
                "liaison_officer": 201,
                "unit_security": 201,
                "unit_security_b1": 404,
                "mediator": 403,
                "service_point_staff": 403,
            },
            count=count,
        ),
    )
    r = await client.post(
        f"{API}/{ids['b1']}/reply", json={"text": "x"}, headers=mw.headers["station_officer"]
    )
    assert r.status_code == 404


async def test_overdue_job_stats_and_facts(
    client: httpx.AsyncClient, db: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    mw = await make_med_world(db)
    w = mw.world
    a1, a2, b1 = w.units["a1"], w.units["a2"], w.units["b1"]

    def t(month: int, day: int, hour: int = 2) -> dt.datetime:
        return dt.datetime(2026, month, day, hour, tzinfo=UTC)

    def add(
        unit_id: int,
        station: int,
        kind: str,
        sub: dt.datetime,
        resolved: dt.datetime | None = None,
        rating: int | None = None,
    ) -> EnterpriseRequest:
        row = EnterpriseRequest(
            unit_id=unit_id,
            station_id=station,
            kind=kind,
            title=kind,
            body="x",
            status="resolved" if resolved else "submitted",
            submitted_at=sub,
            due_at=sub + dt.timedelta(days=7),
            resolved_at=resolved,
            rating=rating,
            rated_at=resolved + dt.timedelta(hours=1) if rating and resolved else None,
        )
        db.add(row)
        return row

    sa, sb = w.station_a, w.station_b
    add(a1, sa, "traffic", t(1, 3), resolved=t(1, 5), rating=4)  # 2 days
    add(a2, sa, "traffic", t(1, 10), resolved=t(1, 16, 14), rating=2)  # 6.5 days
    add(a1, sa, "permits", t(1, 20))  # open, overdue since 27 Jan
    add(b1, sb, "fraud_training", t(1, 25), resolved=t(2, 4))  # 10 days, resolved in Feb
    late = add(b1, sb, "traffic", t(3, 30))  # open, not yet due on 2 Apr... due 6 Apr
    await db.commit()
    assert late.id

    now = t(4, 2)
    assert await jobs.flag_overdue(db, now=now) == 1
    assert await jobs.flag_overdue(db, now=now) == 0  # idempotent
    assert await jobs.flag_overdue(db, now=t(4, 8)) == 1  # the late one now
    events.register()
    while await outbox.dispatch_pending(sessionmaker) > 0:
        pass
    told = set(await db.scalars(select(Notification.user_id).where(Notification.kind == "requests.overdue")))
    assert w.users["station_officer"].id in told
    assert w.users["liaison_officer"].id in told
    assert w.users["bureau_admin"].id in told

    h = mw.headers["bureau_admin"]
    r = await client.get(
        f"{API}/stats", params={"group": "month", "from": "2026-01-01", "to": "2026-02-28"}, headers=h
    )
    body = r.json()
    got = [
        (x["key"], x["collected"], x["resolved"], x["avg_days"], x["rated"], x["avg_rating"])
        for x in body["items"]
    ]
    assert got == [("2026-01", 4, 2, 4.2, 2, 3.0), ("2026-02", 0, 1, 10.0, 0, None)]
    s = body["summary"]
    assert (s["collected"], s["resolved"], s["avg_days"]) == (4, 3, 6.2)  # (2 + 6.5 + 10) / 3
    r = await client.get(f"{API}/stats", params={"group": "kind"}, headers=mw.headers["station_officer"])
    assert [(x["key"], x["collected"], x["resolved"], x["overdue"]) for x in r.json()["items"]] == [
        ("traffic", 2, 2, 0),
        ("permits", 1, 0, 1),
    ]
    r = await client.get(API, params={"status": "overdue"}, headers=h)
    assert r.json()["total"] == 2
    r = await client.get(API, params={"month": "2026-01", "station_id": sa}, headers=h)
    assert r.json()["total"] == 3

    jan = await facts.monthly_facts(
        db, dt.datetime(2025, 12, 31, 16, tzinfo=UTC), dt.datetime(2026, 1, 31, 16, tzinfo=UTC)
    )
    totals: dict[str, float] = {}
    for f in jan:
        assert isinstance(f, Fact)
        totals[f.metric] = totals.get(f.metric, 0) + f.value
    assert totals == {
        "requests.submitted": 4.0,
        "requests.resolved": 2.0,
        "requests.resolve_days_sum": 8.5,
        "requests.rated": 2.0,
        "requests.rating_sum": 6.0,
    }


async def test_departments_and_rerouting(client: httpx.AsyncClient, db: AsyncSession) -> None:
    mw = await make_med_world(db)
    w, h = mw.world, mw.headers
    r = await client.get(f"{API}/departments", headers=h["unit_security"])
    assert {d["code"] for d in r.json()["items"]} == {"anti_fraud", "economic_crime", "traffic", "permits"}
    body = {
        "code": "zhibei_traffic",
        "name": "织北派出所交通组",
        "kinds": ["traffic"],
        "station_id": w.station_a,
    }
    r = await client.post(f"{API}/departments", json=body, headers=h["station_officer"])
    assert r.status_code == 403
    r = await client.post(f"{API}/departments", json=body, headers=h["bureau_admin"])
    assert r.status_code == 201
    local = r.json()["id"]
    r = await client.post(f"{API}/departments", json=body, headers=h["bureau_admin"])
    assert r.status_code == 409
    # A station's own department is preferred for its units; station B's units keep the district one.
    r = await client.post(
        API, json={"kind": "traffic", "title": "t", "body": "b"}, headers=h["unit_security"]
    )
    assert r.json()["department_id"] == local
    r = await client.post(
        API, json={"kind": "traffic", "title": "t", "body": "b"}, headers=h["unit_security_b1"]
    )
    assert r.json()["department_name"] == "交警织里中队"
    rid = r.json()["id"]
    # Re-route to an officer: must be an active officer account.
    r = await client.post(
        f"{API}/{rid}/route", json={"assignee_id": w.users["mediator"].id}, headers=h["station_officer_b"]
    )
    assert r.status_code == 422
    r = await client.post(
        f"{API}/{rid}/route",
        json={"assignee_id": w.users["station_officer_b"].id},
        headers=h["station_officer_b"],
    )
    assert r.status_code == 200
    assert (r.json()["department_id"], r.json()["assignee_name"]) == (None, "station_officer_b")
    r = await client.get(
        API, params={"assignee_id": w.users["station_officer_b"].id}, headers=h["bureau_admin"]
    )
    assert [i["id"] for i in r.json()["items"]] == [rid]
    r = await client.post(f"{API}/{rid}/route", json={}, headers=h["station_officer_b"])
    assert r.status_code == 422
