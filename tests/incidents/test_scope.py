"""Jurisdiction of incidents for every role, and every transition's role check."""

from __future__ import annotations

import datetime as dt

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from eqian.incidents.models import Incident
from tests.incidents.helpers import API, IncWorld, add_incident, make_inc_world
from tests.scoped import ScopedEndpoints, check_scoped_endpoints

T0 = dt.datetime(2026, 3, 1, 2, tzinfo=dt.UTC)


async def _count(db: AsyncSession) -> int:
    return await db.scalar(select(func.count()).select_from(Incident)) or 0


async def test_scope_of_incidents(client: httpx.AsyncClient, db: AsyncSession) -> None:
    iw = await make_inc_world(db)
    w = iw.world
    station_of = {
        "a1": w.station_a,
        "a2": w.station_a,
        "a3": w.station_a,
        "b1": w.station_b,
        "b2": w.station_b,
    }
    handed: dict[str, int] = {}  # self-governed, assigned: the unit's queue
    dispatched: dict[str, int] = {}  # police matter at the unit
    pending: dict[str, int] = {}  # self-governance suggested, not triaged yet
    for label, unit_id in w.units.items():
        sid = station_of[label]
        handed[label] = await add_incident(
            db, station_id=sid, unit_id=unit_id, reported_at=T0, status="assigned"
        )
        dispatched[label] = await add_incident(
            db,
            station_id=sid,
            unit_id=unit_id,
            reported_at=T0,
            route="dispatch",
            police=True,
            category="theft",
            status="assigned",
        )
        pending[label] = await add_incident(db, station_id=sid, unit_id=unit_id, reported_at=T0)
    street_a = await add_incident(db, station_id=w.station_a, reported_at=T0, route="dispatch", police=True)
    street_b = await add_incident(db, station_id=w.station_b, reported_at=T0, route="mediation")
    every = {*handed.values(), *dispatched.values(), *pending.values(), street_a, street_b}

    def of(*labels: str, kinds: tuple[dict[str, int], ...] = (handed, dispatched, pending)) -> set[int]:
        return {kind[label] for kind in kinds for label in labels}

    visible = {
        "bureau_admin": every,
        "station_officer": of("a1", "a2", "a3") | {street_a},
        "station_officer_b": of("b1", "b2") | {street_b},
        "liaison_officer": of("a1"),
        "unit_security": of("a1", kinds=(handed,)),
        "unit_security_b1": of("b1", kinds=(handed,)),
        "mediator": set(),
        "service_point_staff": of("a1", "a2", kinds=(handed,)),
    }
    await check_scoped_endpoints(
        client,
        iw.headers,
        ScopedEndpoints(
            list_url=API,
            detail_url=lambda i: f"{API}/{i}",
            all_ids=every,
            visible=visible,
            create_url=API,
            create_body=lambda who: {"description": "工人讨要工资发生纠纷", "unit_ref": str(w.units["a1"])},
            create_status={
                "bureau_admin": 201,
                "station_officer": 201,
                "station_officer_b": 422,  # a1 is not a unit of station B
                "liaison_officer": 403,
                "unit_security": 403,
                "unit_security_b1": 403,
                "mediator": 403,
                "service_point_staff": 403,
            },
            count=lambda: _count(db),
        ),
    )
    # The drill-down filters narrow within the scope.
    r = await client.get(
        API, params={"unit_id": w.units["a1"], "limit": 500}, headers=iw.headers["bureau_admin"]
    )
    assert r.json()["total"] == 3 + 2  # three seeded + the two created above
    r = await client.get(API, params={"station_id": w.station_b}, headers=iw.headers["station_officer"])
    assert r.json()["total"] == 0
    r = await client.get(
        API, params={"month": "2026-03", "route": "mediation"}, headers=iw.headers["bureau_admin"]
    )
    assert {i["id"] for i in r.json()["items"]} == {street_b}
    assert (
        await client.get(API, params={"month": "2026-13"}, headers=iw.headers["bureau_admin"])
    ).status_code == 422


EXPECT_SELF_GOVERNED = {  # action on a self-governed incident of unit a1 -> status per role
    "start": {
        "bureau_admin": 200,
        "station_officer": 200,
        "station_officer_b": 404,
        "liaison_officer": 403,
        "unit_security": 200,
        "unit_security_b1": 404,
        "mediator": 404,
        "service_point_staff": 403,
    },
    "resolve": {
        "bureau_admin": 200,
        "station_officer": 200,
        "station_officer_b": 404,
        "liaison_officer": 403,
        "unit_security": 200,
        "unit_security_b1": 404,
        "mediator": 404,
        "service_point_staff": 403,
    },
    "close": {
        "bureau_admin": 200,
        "station_officer": 200,
        "station_officer_b": 404,
        "liaison_officer": 403,
        "unit_security": 403,
        "unit_security_b1": 404,
        "mediator": 404,
        "service_point_staff": 403,
    },
    "reopen": {
        "bureau_admin": 200,
        "station_officer": 200,
        "station_officer_b": 404,
        "liaison_officer": 403,
        "unit_security": 403,
        "unit_security_b1": 404,
        "mediator": 404,
        "service_point_staff": 403,
    },
}
FROM_STATUS = {"start": "assigned", "resolve": "in_progress", "close": "resolved", "reopen": "closed"}


async def _each_role(
    client: httpx.AsyncClient,
    db: AsyncSession,
    iw: IncWorld,
    url: str,
    body: dict[str, object],
    expected: dict[str, int],
    make: object,
) -> None:
    for who, status in expected.items():
        incident_id = await make()  # type: ignore[operator]
        before = await db.scalar(select(Incident.status).where(Incident.id == incident_id))
        r = await client.post(url.format(incident_id), json=body, headers=iw.headers[who])
        assert r.status_code == status, (url, who, r.status_code, r.text)
        db.expire_all()
        after = await db.scalar(select(Incident.status).where(Incident.id == incident_id))
        assert (after != before) == (status == 200), (url, who, before, after)


async def test_every_transition_is_role_checked(client: httpx.AsyncClient, db: AsyncSession) -> None:
    iw = await make_inc_world(db)
    w = iw.world
    for action, expected in EXPECT_SELF_GOVERNED.items():

        async def make(action: str = action) -> int:
            return await add_incident(
                db, station_id=w.station_a, unit_id=w.units["a1"], reported_at=T0, status=FROM_STATUS[action]
            )

        await _each_role(client, db, iw, API + "/{}/transition", {"action": action}, expected, make)

    # A dispatched matter is not the unit's to move (even when the unit can be named).
    async def dispatched() -> int:
        return await add_incident(
            db,
            station_id=w.station_a,
            unit_id=w.units["a1"],
            reported_at=T0,
            status="assigned",
            route="dispatch",
            police=True,
            category="theft",
        )

    await _each_role(
        client,
        db,
        iw,
        API + "/{}/transition",
        {"action": "start"},
        {"unit_security": 404, "liaison_officer": 403, "station_officer": 200},
        dispatched,
    )

    async def reported() -> int:
        return await add_incident(db, station_id=w.station_a, unit_id=w.units["a1"], reported_at=T0)

    await _each_role(
        client,
        db,
        iw,
        API + "/{}/triage",
        {},
        {
            "bureau_admin": 200,
            "station_officer": 200,
            "station_officer_b": 404,
            "liaison_officer": 403,
            "unit_security": 404,
            "unit_security_b1": 404,
            "mediator": 404,
            "service_point_staff": 404,
        },
        reported,
    )
    # Correcting the link is an officer's job.
    incident_id = await reported()
    for who, status in (("liaison_officer", 403), ("station_officer_b", 404), ("station_officer", 200)):
        r = await client.post(
            f"{API}/{incident_id}/link",
            json={"unit_id": w.units["a2"], "reason": "地址写错"},
            headers=iw.headers[who],
        )
        assert r.status_code == status, (who, r.text)
    r = await client.get(f"{API}/{incident_id}", headers=iw.headers["station_officer"])
    assert (r.json()["unit_id"], r.json()["link_method"]) == (w.units["a2"], "manual")
    assert "地址写错" in r.json()["link_reason"]
    # station officer A cannot link to a unit of station B
    r = await client.post(
        f"{API}/{incident_id}/link",
        json={"unit_id": w.units["b1"], "reason": "x"},
        headers=iw.headers["station_officer"],
    )
    assert r.status_code == 422
