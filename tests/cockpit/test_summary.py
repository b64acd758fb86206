"""The cockpit's figures equal direct counts over the raw rows: KPIs with 同比/环比, filters, scope,
breakdowns, trend and drill-down, on a hand-built district (month boundaries in Asia/Shanghai)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from eqian.cockpit import rollups
from eqian.core import months
from eqian.hazards.models import Hazard
from eqian.safety_index.models import SafetyIndexScore
from tests.cockpit.helpers import API, CockpitWorld, add_raw, at, make_cockpit_world
from tests.cockpit.raw_facts import raw
from tests.hazards.helpers import add_hazard

pytestmark = pytest.mark.usefixtures("raw_table")


def kpis(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {k["code"]: k for k in body["kpis"]}


async def build(db: AsyncSession) -> CockpitWorld:
    cw = await make_cockpit_world(db)
    w = cw.hz.world
    a1, a2, a3, b1, b2 = (cw.unit(x) for x in ("a1", "a2", "a3", "b1", "b2"))
    sa, sb = w.station_a, w.station_b
    # Hazards, through the real hazards facts.
    await add_hazard(db, a1, found_at=at(2026, 3, 5), status="verified", verified_at=at(2026, 3, 10))
    await add_hazard(db, a2, found_at=at(2026, 2, 28, 17))  # 1 March 01:00 in Zhili: a March find
    await add_hazard(db, b1, found_at=at(2026, 3, 15))
    await add_hazard(db, a1, found_at=at(2026, 2, 10))  # the month before
    await add_hazard(db, a3, found_at=at(2025, 3, 20))  # the same month a year before
    await add_hazard(
        db,
        b2,
        found_at=at(
            2026,
            3,
            31,
            16,
        ),
    )  # 1 April 00:00 local: not March
    # Incidents and the rest, through the stand-in raw table.
    march = [
        ("incidents.total", 1, sa, a1),
        ("incidents.total", 1, sa, a1),
        ("incidents.total", 1, sa, None),  # a street incident: not enterprise-related
        ("incidents.total", 1, sb, b1),
        ("incidents.non_police", 1, sa, a1),
        ("incidents.non_police", 1, sa, None),
        ("incidents.fraud_loss_yuan", 10000, sa, a2),
        ("incidents.fraud_recovered_yuan", 2500, sa, a2),
        ("mediation.cases", 3, sa, a1),
        ("mediation.success", 2, sa, a1),
        ("mediation.failed", 1, sa, a1),
        ("mediation.amount_recovered_yuan", 5000, sa, a1),
        ("requests.submitted", 2, sb, b2),
        ("requests.resolved", 1, sb, b2),
        ("messaging.instructions", 1, sa, a1),
        ("messaging.instructions", 1, sa, a2),
        ("messaging.instructions", 1, sb, b1),
        ("messaging.instructions", 1, sb, b2),
        ("messaging.acknowledged", 1, sa, a1),
        ("messaging.acknowledged", 1, sa, a2),
        ("messaging.acknowledged", 1, sb, b1),
    ]
    for metric, value, station, unit in march:
        await add_raw(db, at(2026, 3, 12), metric, value, station_id=station, unit_id=unit)
    for _ in range(5):
        await add_raw(db, at(2025, 3, 3), "incidents.total", station_id=sa, unit_id=a1)
    for _ in range(2):
        await add_raw(db, at(2026, 2, 3), "incidents.total", station_id=sb, unit_id=b2)
    await add_raw(
        db,
        at(
            2026,
            3,
            31,
            16,
        ),
        "incidents.total",
        station_id=sb,
        unit_id=b2,
    )  # April, local
    for unit, station, grade, score in (
        (a1, sa, "excellent", 95.0),
        (a2, sa, "good", 82.0),
        (b1, sb, "poor", 41.0),
    ):
        await db.execute(
            insert(SafetyIndexScore).values(
                month="2026-03",
                unit_id=unit,
                station_id=station,
                category_code="garment",
                score=score,
                grade=grade,
                rank_station=1,
                station_units=1,
                rank_category=1,
                category_units=1,
                change=None,
                deductions=[],
                advice=[],
                config_version="test",
            )
        )
    await db.commit()
    await rollups.rebuild(db, "2025-03", "2026-04")
    return cw


async def test_figures_equal_direct_counts(client: httpx.AsyncClient, db: AsyncSession) -> None:
    cw = await build(db)
    h = cw.headers
    body = (await client.get(f"{API}/summary", params={"month": "2026-03"}, headers=h["bureau_admin"])).json()
    k = kpis(body)

    # Hazards: the API equals a direct count over hz_hazards within the local month.
    start, end = months.bounds("2026-03")
    direct = await db.scalar(
        select(func.count()).select_from(Hazard).where(Hazard.found_at >= start, Hazard.found_at < end)
    )
    assert direct == 3
    assert k["hazards_found"]["value"] == direct
    assert (k["hazards_found"]["month_before"], k["hazards_found"]["year_before"]) == (1, 1)
    assert k["hazards_rectified"]["value"] == 1

    # Incidents: 同比 5 → 4 is −1 (−20 %), 环比 2 → 4 is +2 (+100 %).
    inc = k["incidents_total"]
    direct_inc = await db.scalar(
        select(func.sum(raw.c.value)).where(
            raw.c.metric == "incidents.total", raw.c.at >= start, raw.c.at < end
        )
    )
    assert inc["value"] == direct_inc == 4
    assert (inc["year_before"], inc["month_before"]) == (5, 2)
    assert (inc["yoy_change"], inc["yoy_change_pct"], inc["mom_change"], inc["mom_change_pct"]) == (
        -1,
        -20.0,
        2,
        100.0,
    )
    assert k["incidents_enterprise"]["value"] == 3  # the street incident has no unit
    assert k["non_police_share"]["value"] == 0.5
    assert (k["non_police_share"]["numerator"], k["non_police_share"]["denominator"]) == (2, 4)
    assert k["non_police_share"]["year_before"] == 0.0
    assert k["non_police_share"]["yoy_change"] == 50.0  # percentage points
    assert k["mediation_cases"]["value"] == 3
    assert k["mediation_success_rate"]["value"] == pytest.approx(2 / 3)
    assert k["mediation_success_rate"]["month_before"] is None  # nothing concluded: no rate
    assert k["amount_recovered"]["value"] == 5000
    assert k["fraud_loss"]["value"] == 10000
    assert k["fraud_recovery_rate"]["value"] == 0.25
    assert (k["requests_submitted"]["value"], k["requests_resolved"]["value"]) == (2, 1)
    assert k["ack_rate"]["value"] == 0.75
    grades = {g: v["value"] for g, v in body["index_distribution"].items()}
    assert grades == {"excellent": 1, "good": 1, "fair": 0, "poor": 1}
    assert body["freshness"]["pending"] == []
    assert k["incidents_total"]["link"] == "/incidents?month=2026-03"

    # Filters: station and category.
    st_a = {"month": "2026-03", "station_id": cw.hz.world.station_a}
    ka = kpis((await client.get(f"{API}/summary", params=st_a, headers=h["bureau_admin"])).json())
    assert (ka["hazards_found"]["value"], ka["incidents_total"]["value"], ka["ack_rate"]["value"]) == (
        2,
        3,
        1.0,
    )
    garment = {"month": "2026-03", "category": "garment"}
    kg = kpis((await client.get(f"{API}/summary", params=garment, headers=h["bureau_admin"])).json())
    assert (
        kg["hazards_found"]["value"],
        kg["incidents_total"]["value"],
        kg["incidents_total"]["year_before"],
    ) == (2, 3, 5)

    # Scope: the station officer gets their station only, whatever they ask; others are refused.
    ks = kpis(
        (await client.get(f"{API}/summary", params={"month": "2026-03"}, headers=h["station_officer"])).json()
    )
    assert {c: v["value"] for c, v in ks.items()} == {c: v["value"] for c, v in ka.items()}
    assert (ks["hazards_found"]["value"], ks["incidents_total"]["value"]) == (2, 3)
    other = {"month": "2026-03", "station_id": cw.hz.world.station_b}
    assert (await client.get(f"{API}/summary", params=other, headers=h["station_officer"])).status_code == 404
    for role in ("unit_security", "liaison_officer", "mediator", "service_point_staff"):
        r = await client.get(f"{API}/summary", params={"month": "2026-03"}, headers=h[role])
        assert r.status_code == 403, role
        assert r.json()["error"]["code"]
    assert (
        await client.get(f"{API}/summary", params={"month": "2026-13"}, headers=h["bureau_admin"])
    ).status_code == 422
    assert (
        await client.get(f"{API}/summary", params={"month": "x"}, headers=h["bureau_admin"])
    ).status_code == 422

    # Bars add up to the total.
    by_station = (
        await client.get(
            f"{API}/breakdown",
            params={"month": "2026-03", "kpi": "incidents_total", "by": "station"},
            headers=h["bureau_admin"],
        )
    ).json()["items"]
    assert {r["label"]: r["value"] for r in by_station} == {"织北派出所": 3, "织南派出所": 1}
    by_cat = (
        await client.get(
            f"{API}/breakdown", params={"month": "2026-03", "kpi": "ack_rate"}, headers=h["bureau_admin"]
        )
    ).json()["items"]
    assert {r["key"]: (r["numerator"], r["denominator"]) for r in by_cat} == {
        "garment": (2, 2),
        "market": (1, 1),
        "logistics": (0, 1),
    }
    assert (
        await client.get(f"{API}/breakdown", params={"kpi": "nope"}, headers=h["bureau_admin"])
    ).status_code == 422

    # Trend: thirteen months with the year before alongside.
    trend = (
        await client.get(
            f"{API}/trend", params={"month": "2026-03", "kpi": "incidents_total"}, headers=h["bureau_admin"]
        )
    ).json()["items"]
    assert [t["month"] for t in trend][:2] == ["2025-03", "2025-04"]
    assert len(trend) == 13
    assert {t["month"]: t["value"] for t in trend if t["value"]} == {"2025-03": 5, "2026-02": 2, "2026-03": 4}
    assert trend[-1]["year_before"] == 5

    # Drill-down: the units behind a figure add up to it.
    drill = (
        await client.get(
            f"{API}/drill", params={"month": "2026-03", "kpi": "incidents_total"}, headers=h["bureau_admin"]
        )
    ).json()
    assert drill["numerator"] == 4
    assert {(i["unit_id"], i["numerator"]) for i in drill["items"]} == {
        (cw.unit("a1"), 2),
        (None, 1),
        (cw.unit("b1"), 1),
    }
    drill_a = (
        await client.get(
            f"{API}/drill", params={"month": "2026-03", "kpi": "hazards_found"}, headers=h["station_officer"]
        )
    ).json()
    assert drill_a["numerator"] == 2
    assert {i["unit_id"] for i in drill_a["items"]} == {
        cw.unit("a1"),
        cw.unit("a2"),
    }

    # The map colours units by their grade of the month.
    points = (
        await client.get(f"{API}/map", params={"month": "2026-03"}, headers=h["station_officer"])
    ).json()["items"]
    assert {p["unit_id"]: p["grade"] for p in points} == {
        cw.unit("a1"): "excellent",
        cw.unit("a2"): "good",
        cw.unit("a3"): None,
    }
