"""Monthly facts of incidents against hand counts, and the routing policy table."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from eqian.incidents import facts
from eqian.incidents.routing import Policy
from tests.incidents.helpers import API, add_incident, make_inc_world

MARCH = dt.datetime(2026, 3, 1, tzinfo=dt.UTC) - dt.timedelta(hours=8)  # 2026-03-01 00:00 Asia/Shanghai
APRIL = dt.datetime(2026, 4, 1, tzinfo=dt.UTC) - dt.timedelta(hours=8)


async def test_monthly_facts_match_hand_counts(db: AsyncSession) -> None:
    iw = await make_inc_world(db)
    w = iw.world
    a1, sa, sb = w.units["a1"], w.station_a, w.station_b
    d = dt.timedelta
    # unit a1 in March: 2 self-governed labour matters (one resolved late, one resolved in time),
    # 1 fraud (police, severe) with loss 20,000 and 5,000 recovered, still open past its SLA.
    await add_incident(
        db,
        station_id=sa,
        unit_id=a1,
        reported_at=MARCH + d(days=1),
        status="resolved",
        resolved_at=MARCH + d(days=5),
        sla_hours=72,
    )  # late: 4 days > 72 h
    await add_incident(
        db,
        station_id=sa,
        unit_id=a1,
        reported_at=MARCH + d(days=2),
        status="closed",
        resolved_at=MARCH + d(days=3),
        sla_hours=72,
    )
    await add_incident(
        db,
        station_id=sa,
        unit_id=a1,
        reported_at=MARCH + d(days=3),
        category="fraud",
        police=True,
        route="dispatch",
        status="in_progress",
        sla_hours=24,
        severity="high",
        fraud_loss=Decimal("20000"),
        fraud_recovered=Decimal("5000"),
    )
    # a street incident of station B in March, a self-governed one not yet resolved and within SLA
    await add_incident(
        db,
        station_id=sb,
        reported_at=MARCH + d(days=30, hours=23),
        category="traffic",
        police=True,
        route="dispatch",
        status="assigned",
        sla_hours=24 * 365 * 10,
    )
    # a2's self-governed matter of the last day of March, due and resolved in April: at the end
    # of March it was neither resolved nor overdue, and computed later it still was not
    await add_incident(
        db,
        station_id=sa,
        unit_id=w.units["a2"],
        reported_at=APRIL - d(hours=12),
        status="resolved",
        resolved_at=APRIL + d(days=5),
        sla_hours=48,
    )
    # outside March: the last minute of February (local) and the first of April
    await add_incident(db, station_id=sa, unit_id=a1, reported_at=MARCH - d(minutes=1))
    await add_incident(db, station_id=sa, unit_id=a1, reported_at=APRIL)

    now = APRIL + d(days=10)
    got = {
        (f.station_id, f.unit_id, f.metric): f.value
        for f in await facts.monthly_facts(db, MARCH, APRIL, now=now)
    }
    assert got == {
        (sa, a1, "incidents.total"): 3,
        (sa, a1, "incidents.police"): 1,
        (sa, a1, "incidents.non_police"): 2,
        (sa, a1, "incidents.cat.labor"): 2,
        (sa, a1, "incidents.cat.fraud"): 1,
        (sa, a1, "incidents.severe"): 1,
        (sa, a1, "incidents.self_governed"): 2,
        (sa, a1, "incidents.self_governed_resolved"): 2,
        (sa, a1, "incidents.overdue"): 2,
        (sa, a1, "incidents.fraud_loss_yuan"): 20000.0,
        (sa, a1, "incidents.fraud_recovered_yuan"): 5000.0,
        (sa, w.units["a2"], "incidents.total"): 1,
        (sa, w.units["a2"], "incidents.non_police"): 1,
        (sa, w.units["a2"], "incidents.cat.labor"): 1,
        (sa, w.units["a2"], "incidents.self_governed"): 1,
        (sb, None, "incidents.total"): 1,
        (sb, None, "incidents.police"): 1,
        (sb, None, "incidents.cat.traffic"): 1,
    }
    # March judged a year later is March judged at its end. Judged on 4 March at noon (local): of
    # a1's labour matters only the one resolved on the 4th counts as resolved, and nothing is
    # overdue yet (the late one was due on the 5th, the fraud on the 5th too)
    later = await facts.monthly_facts(db, MARCH, APRIL, now=APRIL + d(days=365))
    assert {(f.station_id, f.unit_id, f.metric): f.value for f in later} == got
    mid = {
        (f.station_id, f.unit_id, f.metric): f.value
        for f in await facts.monthly_facts(db, MARCH, APRIL, now=MARCH + d(days=3, hours=12))
    }
    assert mid[(sa, a1, "incidents.self_governed_resolved")] == 1
    assert mid.get((sa, a1, "incidents.overdue")) is None


def test_most_specific_rule_wins() -> None:
    policy = Policy(
        (
            (1, "*", "*", "*", "dispatch", 24),
            (2, "*", "no", "*", "self_governance", 72),
            (3, "labor", "*", "*", "mediation", 168),
            (4, "labor", "no", "garment", "self_governance", 48),
        )
    )
    assert policy.decide("theft", True, "garment").route == "dispatch"
    assert policy.decide("neighbor", False, None).route == "self_governance"
    assert policy.decide("labor", False, "market").route == "mediation"  # category beats police
    d = policy.decide("labor", False, "garment")
    assert (d.route, d.sla_hours, d.rule_id) == ("self_governance", 48, 4)
    assert policy.sla_for("dispatch", "labor", False, "garment") == 24  # not the policy's route: default


async def test_bureau_admin_edits_the_policy(client: httpx.AsyncClient, db: AsyncSession) -> None:
    iw = await make_inc_world(db)
    admin, officer = iw.headers["bureau_admin"], iw.headers["station_officer"]
    rules = (await client.get(f"{API}/routing-rules", headers=officer)).json()["items"]
    assert any(r["category"] == "*" and r["police"] == "*" and r["unit_category"] == "*" for r in rules)
    body = {
        "category": "labor",
        "police": "no",
        "unit_category": "garment",
        "route": "mediation",
        "sla_hours": 96,
    }
    assert (await client.post(f"{API}/routing-rules", json=body, headers=officer)).status_code == 403
    r = await client.post(f"{API}/routing-rules", json=body, headers=admin)
    assert r.status_code == 201, r.text
    rule_id = r.json()["id"]
    assert (await client.post(f"{API}/routing-rules", json=body, headers=admin)).status_code == 409
    bad = {**body, "unit_category": "none", "route": "self_governance"}
    assert (await client.post(f"{API}/routing-rules", json=bad, headers=admin)).status_code == 422
    # New incidents follow the new rule at once.
    inc = await client.post(
        API,
        json={"description": "贝贝童装的工人反映老板拖欠工资", "unit_ref": str(iw.world.units["a1"])},
        headers=officer,
    )
    assert (inc.json()["route"], inc.json()["sla_hours"]) == ("mediation", 96)
    r = await client.patch(f"{API}/routing-rules/{rule_id}", json={"sla_hours": 12}, headers=admin)
    assert r.status_code == 200
    assert r.json()["sla_hours"] == 12
    assert (await client.delete(f"{API}/routing-rules/{rule_id}", headers=admin)).status_code == 204
    catch_all = next(
        r["id"]
        for r in (await client.get(f"{API}/routing-rules", headers=admin)).json()["items"]
        if (r["category"], r["police"], r["unit_category"]) == ("*", "*", "*")
    )
    r = await client.delete(f"{API}/routing-rules/{catch_all}", headers=admin)
    assert r.status_code == 409
