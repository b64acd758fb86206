"""Jurisdiction of inspections and hazards for every role: each lists exactly its units' share,
gets 404 for every other object, and may record an inspection only where it should."""

from __future__ import annotations

import datetime as dt

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from eqian.hazards.models import Hazard, Inspection
from tests.hazards.helpers import API_H, API_I, add_hazard, make_hz_world
from tests.scoped import ScopedEndpoints, check_scoped_endpoints

UNITS_OF = {
    "bureau_admin": ("a1", "a2", "a3", "b1", "b2"),
    "station_officer": ("a1", "a2", "a3"),
    "station_officer_b": ("b1", "b2"),
    "liaison_officer": ("a1",),
    "unit_security": ("a1",),
    "unit_security_b1": ("b1",),
    "mediator": (),
    "service_point_staff": ("a1", "a2"),
}


async def test_scope_of_inspections_and_hazards(client: httpx.AsyncClient, db: AsyncSession) -> None:
    hz = await make_hz_world(db)
    found = dt.datetime(2026, 3, 1, 2, tzinfo=dt.UTC)
    hazard_of: dict[str, int] = {}
    for label, unit_id in hz.world.units.items():
        hazard_of[label] = await add_hazard(db, unit_id, found_at=found)
    inspection_of = {
        label: await db.scalar(select(Hazard.inspection_id).where(Hazard.id == hid)) or 0
        for label, hid in hazard_of.items()
    }

    async def count_inspections() -> int:
        return await db.scalar(select(func.count()).select_from(Inspection)) or 0

    garment = [{"item_id": i.id, "result": "pass"} for i in hz.items["garment"]]
    await check_scoped_endpoints(
        client,
        hz.headers,
        ScopedEndpoints(
            list_url=API_I,
            detail_url=lambda i: f"{API_I}/{i}",
            all_ids=set(inspection_of.values()),
            visible={who: {inspection_of[u] for u in units} for who, units in UNITS_OF.items()},
            create_url=API_I,
            create_body=lambda who: {"unit_id": hz.world.units["a1"], "results": garment},
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
            count=count_inspections,
        ),
    )
    await check_scoped_endpoints(
        client,
        hz.headers,
        ScopedEndpoints(
            list_url=API_H,
            detail_url=lambda i: f"{API_H}/{i}",
            all_ids=set(hazard_of.values()),
            visible={who: {hazard_of[u] for u in units} for who, units in UNITS_OF.items()},
        ),
    )
    # The pages answer the same way: 404 outside the scope, never the hazard's data.
    b1_hazard = hazard_of["b1"]
    page = await client.get(f"/hazards/{b1_hazard}", headers=hz.headers["station_officer"])
    assert page.status_code == 404
    page = await client.get(f"/hazards/inspect/{hz.world.units['b1']}", headers=hz.headers["unit_security"])
    assert page.status_code == 404
    # Statistics count only the caller's units.
    stats = await client.get(f"{API_H}/stats", params={"group": "unit"}, headers=hz.headers["unit_security"])
    assert [r["key"] for r in stats.json()["items"]] == [str(hz.world.units["a1"])]
    stats = await client.get(f"{API_H}/stats", params={"group": "station"}, headers=hz.headers["mediator"])
    assert stats.json() == {"items": [], "total": 0}
