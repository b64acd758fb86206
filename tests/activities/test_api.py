"""Roundtable rotation, invitations and answers, attendance, participation and issues raised."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from eqian.activities.models import Activity, ActivityInvitation, ActivityIssue
from eqian.core.audit import AuditLog
from eqian.organizations.models import Unit
from tests.activities import API, add_activity, invite, local, make_activity_world
from tests.factories import credit_code


async def _roundtables(db: AsyncSession, station_id: int) -> list[tuple[dt.date | None, str | None]]:
    rows = await db.execute(
        select(Activity.week_start, Activity.category_code)
        .where(Activity.station_id == station_id, Activity.kind == "roundtable")
        .order_by(Activity.week_start)
    )
    return [tuple(r) for r in rows.all()]  # type: ignore[misc]


async def test_schedule_rotates_through_categories_with_units_and_is_idempotent(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    aw = await make_activity_world(db)
    station = aw.world.station_a
    # Station A: a1 garment, a2 market, a3 property; a closed hazchem unit must not enter the rotation.
    db.add(
        Unit(
            name="关停化工",
            credit_code=credit_code(),
            category_code="hazchem",
            station_id=station,
            status="closed",
        )
    )
    # The fixture's roundtable (week of 2026-02-09, garment) is the last one before the plan.
    await db.commit()
    h = aw.headers["station_officer"]
    body = {"station_id": station, "weeks": 5, "start": "2026-03-04", "location": "织里派出所会议室"}
    r = await client.post(f"{API}/roundtables/schedule", json=body, headers=h)
    assert r.status_code == 200, r.text
    created = r.json()["created"]
    # Category order: garment(0) property(1) market(2); last was garment, so property comes next.
    assert [(c["week_start"], c["category_code"]) for c in created] == [
        ("2026-03-02", "property"),
        ("2026-03-09", "market"),
        ("2026-03-16", "garment"),
        ("2026-03-23", "property"),
        ("2026-03-30", "market"),
    ]
    first = created[0]
    assert first["starts_at"] == "2026-03-04T06:00:00Z"  # Wednesday 14:00 in Shanghai
    assert first["title"] == "警企恳谈会·物业小区"
    assert first["invited_count"] == 1
    invited = await db.execute(
        select(ActivityInvitation.unit_id).where(ActivityInvitation.activity_id == first["id"])
    )
    assert list(invited.scalars()) == [aw.unit("a3")]
    before = await _roundtables(db, station)

    r = await client.post(f"{API}/roundtables/schedule", json=body, headers=h)
    assert r.json()["created"] == []
    assert r.json()["skipped_weeks"] == ["2026-03-02", "2026-03-09", "2026-03-16", "2026-03-23", "2026-03-30"]
    assert await _roundtables(db, station) == before

    r = await client.post(f"{API}/roundtables/schedule", json=body | {"weeks": 7}, headers=h)
    assert [(c["week_start"], c["category_code"]) for c in r.json()["created"]] == [
        ("2026-04-06", "garment"),
        ("2026-04-13", "property"),
    ]
    audit_rows = await db.execute(
        select(func.count(AuditLog.id)).where(AuditLog.action == "activity.schedule_roundtables")
    )
    assert audit_rows.scalar_one() == 3


async def test_schedule_is_refused_outside_the_station_and_for_other_roles(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    aw = await make_activity_world(db)
    body = {"station_id": aw.world.station_a, "weeks": 2, "start": "2026-03-02"}
    for who, status in (
        ("station_officer_b", 403),
        ("liaison_officer", 403),
        ("unit_security", 403),
        ("mediator", 403),
        ("bureau_admin", 200),
    ):
        r = await client.post(f"{API}/roundtables/schedule", json=body, headers=aw.headers[who])
        assert r.status_code == status, (who, r.text)
    r = await client.post(
        f"{API}/roundtables/schedule", json=body | {"weeks": 0}, headers=aw.headers["bureau_admin"]
    )
    assert r.status_code == 422


async def test_a_manual_roundtable_in_a_planned_week_is_refused(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    aw = await make_activity_world(db)
    body = {
        "station_id": aw.world.station_a,
        "kind": "roundtable",
        "title": "加开恳谈会",
        "category_code": "market",
        "starts_at": local(2026, 2, 13, 9).isoformat(),  # same week as the fixture's roundtable
        "ends_at": local(2026, 2, 13, 11).isoformat(),
    }
    r = await client.post(API, json=body, headers=aw.headers["station_officer"])
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "week_taken"


async def test_only_the_invited_unit_answers_its_invitation(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    aw = await make_activity_world(db)
    future = await add_activity(
        db, station_id=aw.world.station_a, kind="safety_training", starts_at=local(2030, 1, 8, 9)
    )
    inv_a1 = await invite(db, future, aw.unit("a1"))
    inv_a2 = await invite(db, future, aw.unit("a2"))
    url = f"{API}/{future}/invitations"
    r = await client.post(
        f"{url}/{inv_a1}/response", json={"response": "accepted"}, headers=aw.headers["unit_security"]
    )
    assert r.status_code == 200, r.text
    assert r.json()["response"] == "accepted"
    # another unit's invitation is not even visible to a1's security head
    r = await client.post(
        f"{url}/{inv_a2}/response", json={"response": "declined"}, headers=aw.headers["unit_security"]
    )
    assert r.status_code == 404
    for who in ("station_officer", "liaison_officer", "bureau_admin"):
        r = await client.post(
            f"{url}/{inv_a1}/response", json={"response": "declined"}, headers=aw.headers[who]
        )
        assert r.status_code == 403, who
    r = await client.post(
        f"{url}/{inv_a1}/response", json={"response": "invited"}, headers=aw.headers["unit_security"]
    )
    assert r.status_code == 422
    rows = await db.execute(
        select(ActivityInvitation.id, ActivityInvitation.response).where(
            ActivityInvitation.activity_id == future
        )
    )
    assert dict(rows.all()) == {inv_a1: "accepted", inv_a2: "invited"}
    audits = (await db.execute(select(AuditLog).where(AuditLog.action == "activity.respond"))).scalars().all()
    assert [(a.entity_id, a.changes["response"]) for a in audits if a.changes] == [(str(inv_a1), "accepted")]
    # a held activity can no longer be answered
    r = await client.post(
        f"{API}/{aw.activities['a_round']}/invitations/{aw.invitations[('a_round', 'a1')]}/attendance",
        json={"attended": True, "attendee_count": 2},
        headers=aw.headers["station_officer"],
    )
    r = await client.post(
        f"{API}/{aw.activities['a_round']}/invitations/{aw.invitations[('a_round', 'a1')]}/response",
        json={"response": "declined"},
        headers=aw.headers["unit_security"],
    )
    assert r.status_code == 409


async def test_attendance_is_recorded_by_officers_and_liaison_with_audit(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    aw = await make_activity_world(db)
    act = aw.activities["bureau"]
    inv_a1, inv_b2 = aw.invitations[("bureau", "a1")], aw.invitations[("bureau", "b2")]
    url = f"{API}/{act}/invitations"
    body = {"attended": True, "attendee_count": 3, "attendee_names": "张三、李四、王五"}
    # a station officer does not manage a bureau-wide activity; a unit never records attendance
    for who, inv, status in (
        ("station_officer", inv_a1, 403),
        ("unit_security", inv_a1, 403),
        ("mediator", inv_a1, 403),
        ("liaison_officer", inv_b2, 404),
        ("liaison_officer", inv_a1, 200),
        ("bureau_admin", inv_b2, 200),
    ):
        r = await client.post(f"{url}/{inv}/attendance", json=body, headers=aw.headers[who])
        assert r.status_code == status, (who, r.text)
    r = await client.post(
        f"{url}/{inv_b2}/attendance",
        json={"attended": False, "attendee_count": 4},
        headers=aw.headers["bureau_admin"],
    )
    assert r.json()["attended"] is False
    assert r.json()["attendee_count"] == 0
    audits = (
        (
            await db.execute(
                select(AuditLog).where(AuditLog.action == "activity.attendance").order_by(AuditLog.seq)
            )
        )
        .scalars()
        .all()
    )
    assert [(a.actor_name, a.entity_id) for a in audits] == [
        ("liaison_officer", str(inv_a1)),
        ("bureau_admin", str(inv_b2)),
        ("bureau_admin", str(inv_b2)),
    ]
    assert audits[2].changes is not None
    assert audits[2].changes["before"] == {"attended": True, "attendee_count": 3}
    held = (await db.execute(select(Activity.status).where(Activity.id == act))).scalar_one()
    assert held == "held"
    # a future activity cannot have attendance yet
    future = await add_activity(
        db, station_id=aw.world.station_a, kind="roundtable", starts_at=local(2030, 1, 8, 9)
    )
    inv = await invite(db, future, aw.unit("a1"))
    r = await client.post(
        f"{API}/{future}/invitations/{inv}/attendance", json=body, headers=aw.headers["station_officer"]
    )
    assert r.status_code == 409


async def test_cancel_and_minutes(client: httpx.AsyncClient, db: AsyncSession) -> None:
    aw = await make_activity_world(db)
    url = f"{API}/{aw.activities['a_meet']}"
    r = await client.patch(url, json={"minutes": "通报近期盗窃警情"}, headers=aw.headers["station_officer"])
    assert r.status_code == 200
    assert r.json()["minutes"] == "通报近期盗窃警情"
    r = await client.patch(url, json={"status": "cancelled"}, headers=aw.headers["liaison_officer"])
    assert r.status_code == 404  # a2 is not the liaison's unit
    r = await client.patch(url, json={"status": "cancelled"}, headers=aw.headers["service_point_staff"])
    assert r.status_code == 403
    r = await client.patch(url, json={"status": "cancelled"}, headers=aw.headers["station_officer"])
    assert r.json()["status"] == "cancelled"
    r = await client.patch(url, json={"status": "planned"}, headers=aw.headers["station_officer"])
    assert r.status_code == 409
    r = await client.patch(url, json={"title": None}, headers=aw.headers["station_officer"])
    assert r.status_code == 422
    actions = (
        await db.execute(select(AuditLog.action).where(AuditLog.entity == "activity").order_by(AuditLog.seq))
    ).scalars()
    assert list(actions) == ["activity.update", "activity.cancel"]


async def test_invite_defaults_to_the_category_in_the_station(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    aw = await make_activity_world(db)
    extra = Unit(
        name="织北二号童装", credit_code=credit_code(), category_code="garment", station_id=aw.world.station_a
    )
    db.add(extra)
    await db.commit()
    url = f"{API}/{aw.activities['a_round']}/invitations"
    r = await client.post(url, json={}, headers=aw.headers["station_officer"])
    assert r.status_code == 200
    assert {i["unit_id"] for i in r.json()} == {aw.unit("a1"), extra.id}
    r = await client.post(url, json={"unit_ids": [aw.unit("b1")]}, headers=aw.headers["station_officer"])
    assert r.status_code == 422  # another station's unit
    r = await client.post(url, json={"unit_ids": [aw.unit("a2")]}, headers=aw.headers["station_officer"])
    assert {i["unit_id"] for i in r.json()} == {aw.unit("a1"), aw.unit("a2"), extra.id}
    r = await client.post(
        f"{API}/{aw.activities['a_patrol']}/invitations", json={}, headers=aw.headers["station_officer"]
    )
    assert r.status_code == 422  # no category: the units must be listed


async def test_participation_is_attended_over_invited_for_held_activities(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    aw = await make_activity_world(db)
    a = aw.world.station_a
    u = aw.unit

    async def held(when: dt.datetime, attendance: dict[str, bool | None], status: str = "held") -> None:
        aid = await add_activity(db, station_id=a, kind="safety_training", starts_at=when, status=status)
        for label, attended in attendance.items():
            await invite(db, aid, u(label), attended=attended)

    # inside January 2026 (local dates)
    await held(local(2026, 1, 5, 9), {"a1": True, "a2": False})
    await held(local(2026, 1, 12, 9), {"a1": True, "a2": None})  # a2 never recorded: not attended
    await held(local(2026, 1, 31, 23, 30), {"a1": False, "b1": True})
    await held(local(2026, 1, 20, 9), {"a1": True}, status="cancelled")  # does not count
    await held(local(2026, 1, 21, 9), {"a1": None}, status="planned")  # not held: does not count
    # outside: 2026-02-01 00:30 local is 2026-01-31 16:30 UTC, still February in Shanghai
    await held(local(2026, 2, 1, 0, 30), {"a1": True, "a2": True})
    await db.commit()
    params: dict[str, str | int] = {"from": "2026-01-01", "to": "2026-01-31"}
    url = f"{API}/participation"

    async def rows(who: str, **extra: int) -> dict[int, tuple[int, int, float | None]]:
        r = await client.get(url, params={**params, **extra}, headers=aw.headers[who])
        assert r.status_code == 200, r.text
        return {i["unit_id"]: (i["invited"], i["attended"], i["rate"]) for i in r.json()["items"]}

    everyone = {u("a1"): (3, 2, 0.6667), u("a2"): (2, 0, 0.0), u("b1"): (1, 1, 1.0)}
    assert await rows("bureau_admin") == everyone
    assert await rows("station_officer") == {k: everyone[k] for k in (u("a1"), u("a2"))}
    assert await rows("unit_security") == {u("a1"): everyone[u("a1")]}
    assert await rows("liaison_officer") == {u("a1"): everyone[u("a1")]}
    assert await rows("mediator") == {}
    assert await rows("partner_officer") == {}
    assert await rows("bureau_admin", unit_id=u("a2")) == {u("a2"): everyone[u("a2")]}
    assert await rows("bureau_admin", station_id=aw.world.station_b) == {u("b1"): everyone[u("b1")]}
    assert await rows("unit_security", unit_id=u("b1")) == {}
    r = await client.get(
        url, params={"from": "2026-02-01", "to": "2026-01-01"}, headers=aw.headers["bureau_admin"]
    )
    assert r.status_code == 422
    r = await client.get(url, params={"from": "2026-13-01"}, headers=aw.headers["bureau_admin"])
    assert r.status_code == 422


@pytest.mark.parametrize("who", ["unit_security", "station_officer", "liaison_officer"])
async def test_issues_raised_are_kept_on_the_activity(
    client: httpx.AsyncClient, db: AsyncSession, who: str
) -> None:
    aw = await make_activity_world(db)
    url = f"{API}/{aw.activities['bureau']}/issues"
    body = {"text": "希望开展一次反诈培训"} | ({} if who == "unit_security" else {"unit_id": aw.unit("a1")})
    r = await client.post(url, json=body, headers=aw.headers[who])
    assert r.status_code == 201, r.text
    assert r.json()["unit_id"] == aw.unit("a1")
    assert r.json()["unit_name"] == "织里贝贝童装有限公司"
    r = await client.get(url, headers=aw.headers["bureau_admin"])
    assert [i["text"] for i in r.json()] == ["希望开展一次反诈培训"]
    assert await db.scalar(select(func.count(AuditLog.id)).where(AuditLog.action == "activity.issue")) == 1


async def test_issue_rules(client: httpx.AsyncClient, db: AsyncSession) -> None:
    aw = await make_activity_world(db)
    url = f"{API}/{aw.activities['bureau']}/issues"
    h = aw.headers
    r = await client.post(url, json={"text": "x", "unit_id": aw.unit("b2")}, headers=h["unit_security"])
    assert r.status_code == 403
    r = await client.post(url, json={"text": "x", "unit_id": aw.unit("a2")}, headers=h["bureau_admin"])
    assert r.status_code == 422  # not invited
    r = await client.post(url, json={"text": "x"}, headers=h["mediator"])
    assert r.status_code == 404
    r = await client.post(url, json={"text": "x"}, headers=h["service_point_staff"])
    assert r.status_code == 403
    r = await client.post(url, json={"text": ""}, headers=h["bureau_admin"])
    assert r.status_code == 422
    await client.post(url, json={"text": "b2 的问题", "unit_id": aw.unit("b2")}, headers=h["bureau_admin"])
    # a1's security head does not read b2's issue
    r = await client.get(url, headers=h["unit_security"])
    assert r.json() == []
    assert await db.scalar(select(func.count(ActivityIssue.id))) == 1
