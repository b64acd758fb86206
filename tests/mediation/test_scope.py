"""Jurisdiction of mediation cases for every role: a mediator sees their team's cases only, a
station officer their station's, a unit's security head their unit's; 404 for everything else."""

from __future__ import annotations

import datetime as dt

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from eqian.mediation.models import MediationCase
from tests.mediation.helpers import API, add_case, make_med_world
from tests.scoped import ScopedEndpoints, check_scoped_endpoints


async def test_scope_of_cases(client: httpx.AsyncClient, db: AsyncSession) -> None:
    mw = await make_med_world(db)
    w = mw.world
    at = dt.datetime(2026, 3, 2, 2, tzinfo=dt.UTC)
    cases = {
        # station A, unit a1, the 平安大姐 team
        "a1_dajie": await add_case(
            db, station_id=w.station_a, team_id=mw.teams["dajie"], unit_id=w.units["a1"], opened_at=at
        ),
        # station A, unit a2 (service point A), a1's advisors cannot be it: team dajie
        "a2_dajie": await add_case(
            db, station_id=w.station_a, team_id=mw.teams["dajie"], unit_id=w.units["a2"], opened_at=at
        ),
        # station A, no unit, taken at service point A, unassigned
        "spa_none": await add_case(
            db, station_id=w.station_a, team_id=None, service_point_id=w.sp_a, opened_at=at
        ),
        # station B, unit b1, 老兵驿站
        "b1_vet": await add_case(
            db, station_id=w.station_b, team_id=mw.teams["veterans"], unit_id=w.units["b1"], opened_at=at
        ),
        # a1's own advisors
        "a1_own": await add_case(
            db, station_id=w.station_a, team_id=mw.teams["a1_advisors"], unit_id=w.units["a1"], opened_at=at
        ),
    }
    visible = {
        "bureau_admin": set(cases),
        "station_officer": {"a1_dajie", "a2_dajie", "spa_none", "a1_own"},
        "station_officer_b": {"b1_vet"},
        "liaison_officer": {"a1_dajie", "a1_own"},
        "unit_security": {"a1_dajie", "a1_own"},
        "unit_security_b1": {"b1_vet"},
        "mediator": {"a1_dajie", "a2_dajie"},
        "mediator_b": {"b1_vet"},
        "service_point_staff": {"a1_dajie", "a2_dajie", "spa_none", "a1_own"},
    }

    async def count() -> int:
        return await db.scalar(select(func.count()).select_from(MediationCase)) or 0

    party = {"name": "王五", "role": "applicant", "phone": "13900001111"}
    await check_scoped_endpoints(
        client,
        mw.headers,
        ScopedEndpoints(
            list_url=f"{API}/cases",
            detail_url=lambda i: f"{API}/cases/{i}",
            all_ids=set(cases.values()),
            visible={who: {cases[k] for k in keys} for who, keys in visible.items()},
            create_url=f"{API}/cases",
            create_body=lambda who: {
                "source": "unit",
                "unit_id": w.units["a1"],
                "dispute_type": "labor",
                "summary": "拖欠工资",
                "parties": [party],
            },
            create_status={
                "bureau_admin": 201,
                "station_officer": 201,
                "station_officer_b": 404,
                "liaison_officer": 201,
                "unit_security": 201,
                "unit_security_b1": 404,
                "mediator": 201,
                "service_point_staff": 201,
            },
            count=count,
        ),
    )
    # Writes follow the scope and the role: another team's mediator cannot even find the case;
    # the unit's security head may record a session only for its own advisors' case.
    session = {"note": "双方到场"}
    h = mw.headers
    r = await client.post(f"{API}/cases/{cases['a1_dajie']}/sessions", json=session, headers=h["mediator_b"])
    assert r.status_code == 404
    r = await client.post(
        f"{API}/cases/{cases['a1_dajie']}/sessions", json=session, headers=h["unit_security"]
    )
    assert r.status_code == 403
    r = await client.post(f"{API}/cases/{cases['a1_own']}/sessions", json=session, headers=h["unit_security"])
    assert r.status_code == 201, r.text
    r = await client.post(
        f"{API}/cases/{cases['a1_dajie']}/sessions", json=session, headers=h["liaison_officer"]
    )
    assert r.status_code == 403
    # Month and unit filters for the cockpit's drill-down.
    r = await client.get(
        f"{API}/cases", params={"month": "2026-03", "unit_id": w.units["a1"]}, headers=h["bureau_admin"]
    )
    assert {i["id"] for i in r.json()["items"]} == {cases["a1_dajie"], cases["a1_own"]}
    r = await client.get(f"{API}/cases", params={"month": "2026-04"}, headers=h["bureau_admin"])
    assert r.json()["total"] == 0
    r = await client.get(f"{API}/cases", params={"month": "2026-13"}, headers=h["bureau_admin"])
    assert r.status_code == 422
    # Statistics are scoped the same way.
    r = await client.get(f"{API}/stats", params={"group": "team"}, headers=h["mediator_b"])
    assert [row["label"] for row in r.json()["items"]] == ["老兵驿站"]
