"""The ash ledger through HTTP: entries, corrections, balance, alerts, audit, outbox, bad input.

Hand-computed case (smelter a1, process coefficient 50 kg ash per t aluminium, last month P):

    production   60 t + 50 t (after correcting a typed 500 t)  = 110 t aluminium → expected 5.5 t ash
    stock        1.0 t at the end of the month before, 1.5 t at the end of P  → Δ stock  +0.5 t
    manifest     5.0 t shipped; the facility first confirms 3.0 t, corrected to 4.95 t
    tolerance    max(5 % × 5.5, 0.5) = 0.5 t

    with 3.0 t:  accounted 3.5,  unaccounted 2.0  > 2 × 0.5 → red, an ``unaccounted_ash`` alert
    with 4.95 t: accounted 5.45, unaccounted 0.05 ≤ 0.5     → green, the alert resolved
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from eqian.core.accounts import Role, User
from eqian.core.audit import AuditLog
from eqian.core.audit import verify as verify_audit
from eqian.core.db import utcnow
from eqian.core.outbox import OutboxEvent
from eqian.environment.balance import period_of, shift_period
from eqian.environment.models import EnvAlert, Manifest, ManifestReceipt, ProductionReport, StockCount
from eqian.organizations.models import JointZone
from tests.factories import World, bearer, make_world

API = "/api/v1/environment"
_serial = itertools.count(1)


@dataclass
class Env:
    world: World
    headers: dict[str, dict[str, str]] = field(default_factory=dict)
    process_a1: int = 0
    process_b1: int = 0
    facility: int = 0
    carrier: int = 0
    period: str = ""  # last month (Asia/Shanghai): every date in it is in the past
    previous: str = ""

    @property
    def a1(self) -> int:
        return self.world.units["a1"]

    @property
    def b1(self) -> int:
        return self.world.units["b1"]

    def h(self, who: str) -> dict[str, str]:
        return self.headers[who]


@pytest.fixture
async def env(client: httpx.AsyncClient, db: AsyncSession) -> Env:
    w = await make_world(db)
    hash_ = w.users["bureau_admin"].password_hash
    extra = User(
        username="unit_security_b",
        display_name="unit_security_b",
        password_hash=hash_,
        role=Role.UNIT_SECURITY.value,
        unit_id=w.units["b1"],
    )
    db.add(extra)
    await db.commit()
    w.users["unit_security_b"] = extra
    e = Env(world=w)
    e.headers = {name: await bearer(db, user) for name, user in w.users.items()}
    admin = e.h("bureau_admin")
    r = await client.post(
        f"{API}/units/{e.a1}/processes", json={"name": "回转炉", "coefficient_kg_per_t": 50}, headers=admin
    )
    assert r.status_code == 201, r.text
    e.process_a1 = r.json()["id"]
    r = await client.post(
        f"{API}/units/{e.b1}/processes", json={"name": "反射炉", "coefficient_kg_per_t": 80}, headers=admin
    )
    e.process_b1 = r.json()["id"]
    r = await client.post(
        f"{API}/facilities",
        json={"name": "湖州危废处置中心", "licence_no": "HW-3305-001", "licensed_capacity_t_per_year": 5000},
        headers=admin,
    )
    assert r.status_code == 201, r.text
    e.facility = r.json()["id"]
    r = await client.post(
        f"{API}/carriers", json={"name": "织里危运车队", "licence_no": "YS-3305-001"}, headers=admin
    )
    assert r.status_code == 201, r.text
    e.carrier = r.json()["id"]
    e.period = shift_period(period_of(utcnow()), -1)
    e.previous = shift_period(e.period, -1)
    return e


def _manifest(e: Env, no: str, shipped_t: float = 5.0, day: str = "20", **extra: Any) -> dict[str, Any]:
    return {
        "manifest_no": no,
        "shipped_at": f"{e.period}-{day}T09:00:00+08:00",
        "shipped_t": shipped_t,
        "carrier_id": e.carrier,
        "vehicle_plate": "浙E12345",
        "facility_id": e.facility,
        **extra,
    }


async def _balance(client: httpx.AsyncClient, e: Env, who: str = "bureau_admin") -> dict[str, Any]:
    r = await client.get(f"{API}/balance", params={"period": e.period}, headers=e.h(who))
    assert r.status_code == 200, r.text
    rows: list[dict[str, Any]] = [row for row in r.json()["items"] if row["unit_id"] == e.a1]
    assert len(rows) == 1
    return rows[0]


async def _alerts(
    client: httpx.AsyncClient, e: Env, kind: str, status: str = "open", who: str = "station_officer"
) -> list[dict[str, Any]]:
    r = await client.get(
        f"{API}/alerts", params={"unit_id": e.a1, "kind": kind, "status": status}, headers=e.h(who)
    )
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


async def _count(db: AsyncSession, model: type[object]) -> int:
    return int(await db.scalar(select(func.count()).select_from(model)) or 0)


# --- the lifecycle -----------------------------------------------------------------------------


async def test_ledger_lifecycle_balance_alert_and_correction(
    client: httpx.AsyncClient, db: AsyncSession, env: Env
) -> None:
    e, P = env, env.period
    staff = e.h("unit_security")  # the smelter's own security head enters production and manifests
    url = f"{API}/units/{e.a1}"

    r = await client.post(
        f"{url}/stock-counts",
        json={"counted_at": f"{e.previous}-28T18:00:00+08:00", "ash_t": 1.0},
        headers=staff,
    )
    assert r.status_code == 201, r.text
    opening_id = r.json()["id"]
    r = await client.post(
        f"{url}/production",
        json={"process_id": e.process_a1, "produced_on": f"{P}-05", "aluminium_t": 60},
        headers=staff,
    )
    assert r.status_code == 201, r.text
    first_id = r.json()["id"]
    assert r.json()["kind"] == "production"
    assert r.json()["detail"]["expected_ash_t"] == pytest.approx(3.0)
    r = await client.post(
        f"{url}/production",
        json={"process_id": e.process_a1, "produced_on": f"{P}-15", "aluminium_t": 500, "note": "录入"},
        headers=staff,
    )
    typo_id = r.json()["id"]
    r = await client.post(
        f"{url}/production",
        json={
            "process_id": e.process_a1,
            "produced_on": f"{P}-15",
            "aluminium_t": 50,
            "note": "更正：多打一个 0",
            "supersedes_id": typo_id,
        },
        headers=staff,
    )
    assert r.status_code == 201, r.text
    fix_id = r.json()["id"]
    assert r.json()["supersedes_id"] == typo_id
    # The typo is corrected once; correcting it again is a conflict, the latest row must be corrected.
    r = await client.post(
        f"{url}/production",
        json={
            "process_id": e.process_a1,
            "produced_on": f"{P}-15",
            "aluminium_t": 55,
            "supersedes_id": typo_id,
        },
        headers=staff,
    )
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "already_superseded"
    r = await client.post(
        f"{url}/stock-counts", json={"counted_at": f"{P}-28T18:00:00+08:00", "ash_t": 1.5}, headers=staff
    )
    assert r.status_code == 201
    closing_id = r.json()["id"]

    no = f"HW{P.replace('-', '')}-0001"
    r = await client.post(f"{url}/manifests", json=_manifest(e, no), headers=staff)
    assert r.status_code == 201, r.text
    manifest_id = r.json()["id"]
    assert r.json()["detail"]["facility_name"] == "湖州危废处置中心"
    r = await client.post(f"{url}/manifests", json=_manifest(e, no, shipped_t=1.0), headers=staff)
    assert r.status_code == 409
    assert r.json()["error"]["details"][0]["field"] == "manifest_no"

    row = await _balance(client, e)
    assert row["aluminium_t"] == pytest.approx(110)
    assert row["expected_t"] == pytest.approx(5.5)
    assert row["shipped_t"] == 0
    assert row["unconfirmed_t"] == pytest.approx(5.0)
    assert row["status"] == "red"

    # The facility confirms 3.0 t (entered by the station officer; the smelter may not confirm itself).
    receipt_url = f"{url}/manifests/{no}/receipts"
    receipt = {"received_at": f"{P}-20T15:00:00+08:00", "received_t": 3.0}
    r = await client.post(receipt_url, json=receipt, headers=staff)
    assert r.status_code == 403
    r = await client.post(receipt_url, json=receipt, headers=e.h("station_officer"))
    assert r.status_code == 201, r.text
    wrong_receipt = r.json()["id"]
    r = await client.post(receipt_url, json={**receipt, "received_t": 4.0}, headers=e.h("station_officer"))
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "already_confirmed"

    row = await _balance(client, e)
    assert (row["shipped_t"], row["unconfirmed_t"]) == (pytest.approx(3.0), 0)
    assert row["stock_start_t"] == pytest.approx(1.0)
    assert row["stock_end_t"] == pytest.approx(1.5)
    assert row["delta_stock_t"] == pytest.approx(0.5)
    assert row["accounted_t"] == pytest.approx(3.5)
    assert row["unaccounted_t"] == pytest.approx(2.0)
    assert row["tolerance_t"] == pytest.approx(0.5)
    assert row["status"] == "red"

    [alert] = await _alerts(client, e, "unaccounted_ash")
    assert alert["period"] == P
    assert alert["severity"] == "red"
    assert alert["evidence"]["production_ids"] == [first_id, fix_id]  # the typo no longer counts
    assert alert["evidence"]["manifest_ids"] == [manifest_id]
    assert alert["evidence"]["receipt_ids"] == [wrong_receipt]
    assert set(alert["evidence"]["stock_ids"]) == {opening_id, closing_id}
    [shortfall] = await _alerts(client, e, "weight_shortfall")
    assert shortfall["evidence"]["shortfall_t"] == pytest.approx(2.0)
    # The new alert left through the outbox, addressed to a1's station, exactly once.
    events = [
        ev.payload
        for ev in await db.scalars(select(OutboxEvent).where(OutboxEvent.topic == "environment.alert"))
        if ev.payload["alert_id"] == alert["id"]
    ]
    assert events == [
        {
            "alert_id": alert["id"],
            "unit_id": e.a1,
            "facility_id": None,
            "kind": "unaccounted_ash",
            "station_id": e.world.station_a,
            "zone_id": None,
        }
    ]

    # The correcting receipt settles the month: green, and both alerts resolve.
    r = await client.post(
        receipt_url,
        json={**receipt, "received_t": 4.95, "note": "过磅单复核", "supersedes_id": wrong_receipt},
        headers=e.h("station_officer"),
    )
    assert r.status_code == 201, r.text
    right_receipt = r.json()["id"]
    row = await _balance(client, e)
    assert row["shipped_t"] == pytest.approx(4.95)
    assert row["accounted_t"] == pytest.approx(5.45)
    assert row["unaccounted_t"] == pytest.approx(0.05)
    assert row["status"] == "green"
    assert await _alerts(client, e, "unaccounted_ash") == []
    assert await _alerts(client, e, "weight_shortfall") == []
    [resolved] = await _alerts(client, e, "unaccounted_ash", status="resolved")
    assert resolved["id"] == alert["id"]
    stored = await db.get(EnvAlert, alert["id"])
    assert stored is not None
    assert stored.resolved_at is not None

    # The drill-down shows every row of the month, the replaced ones with who replaced them.
    r = await client.get(f"{url}/ledger", params={"period": P}, headers=staff)
    assert r.status_code == 200
    ledger = {(x["kind"], x["id"]): x for x in r.json()["items"]}
    assert r.json()["total"] == len(ledger) == 8
    assert ledger[("production", typo_id)]["superseded_by"] == fix_id
    assert ledger[("production", fix_id)]["superseded_by"] is None
    assert ledger[("production", fix_id)]["supersedes_id"] == typo_id
    assert ledger[("receipt", wrong_receipt)]["superseded_by"] == right_receipt
    assert ledger[("stock", opening_id)]["tonnes"] == pytest.approx(1.0)  # the opening count
    assert ledger[("manifest", manifest_id)]["detail"]["manifest_no"] == no
    assert ledger[("production", fix_id)]["entered_by"] == e.world.users["unit_security"].id
    times = [x["at"] for x in r.json()["items"]]
    assert times == sorted(times)

    # Nothing was updated or deleted: every row is still there.
    assert await _count(db, ProductionReport) == 3
    assert await _count(db, StockCount) == 2
    assert await _count(db, Manifest) == 1
    assert await _count(db, ManifestReceipt) == 2

    # One audit row per accepted entry, the correction naming what it supersedes; the chain holds.
    actions = list(await db.scalars(select(AuditLog.action).where(AuditLog.action.like("env.%"))))
    assert sorted(a for a in actions if a.endswith(".create") and "process" not in a) == sorted(
        ["env.production.create"] * 3
        + ["env.stock_count.create"] * 2
        + ["env.manifest.create"]
        + ["env.receipt.create"] * 2
        + ["env.facility.create", "env.carrier.create"]
    )
    fix_audit = await db.scalar(
        select(AuditLog).where(AuditLog.action == "env.production.create", AuditLog.entity_id == str(fix_id))
    )
    assert fix_audit is not None
    assert fix_audit.changes is not None
    assert fix_audit.changes["supersedes_id"] == typo_id
    assert fix_audit.changes["aluminium_t"] == 50
    assert fix_audit.changes["unit_id"] == e.a1
    assert fix_audit.actor_name == "unit_security"
    assert (await verify_audit(db)).ok

    # The trend ends with this month's green balance.
    r = await client.get(f"{url}/balance", params={"months": 3, "until": P}, headers=e.h("liaison_officer"))
    assert r.status_code == 200
    assert [x["period"] for x in r.json()["items"]] == [shift_period(P, -2), e.previous, P]
    assert r.json()["items"][-1]["status"] == "green"
    assert r.json()["items"][0]["status"] == "no_data"


async def test_corrections_must_name_an_effective_row_of_the_same_kind_and_unit(
    client: httpx.AsyncClient, env: Env
) -> None:
    e, P = env, env.period
    admin = e.h("bureau_admin")
    r = await client.post(
        f"{API}/units/{e.b1}/production",
        json={"process_id": e.process_b1, "produced_on": f"{P}-02", "aluminium_t": 5},
        headers=admin,
    )
    other_unit_row = r.json()["id"]
    r = await client.post(
        f"{API}/units/{e.a1}/production",
        json={"process_id": e.process_a1, "produced_on": f"{P}-02", "aluminium_t": 5},
        headers=admin,
    )
    production_row = r.json()["id"]
    for supersedes in (other_unit_row, 999_999, 2**40):
        r = await client.post(
            f"{API}/units/{e.a1}/production",
            json={
                "process_id": e.process_a1,
                "produced_on": f"{P}-02",
                "aluminium_t": 5,
                "supersedes_id": supersedes,
            },
            headers=admin,
        )
        assert r.status_code == 422, (supersedes, r.text)
        assert r.json()["error"]["details"][0]["field"] == "supersedes_id"
    # Kinds do not mix: a manifest cannot supersede a production report (no manifest exists yet).
    r = await client.post(
        f"{API}/units/{e.a1}/manifests",
        json=_manifest(e, "HW-X-1", supersedes_id=production_row),
        headers=admin,
    )
    assert r.status_code == 422
    assert r.json()["error"]["details"][0]["field"] == "supersedes_id"
    # A manifest correction may keep its number; the old row no longer counts as a duplicate.
    r = await client.post(f"{API}/units/{e.a1}/manifests", json=_manifest(e, "HW-X-2"), headers=admin)
    first = r.json()["id"]
    r = await client.post(
        f"{API}/units/{e.a1}/manifests",
        json=_manifest(e, "HW-X-2", shipped_t=4.0, supersedes_id=first),
        headers=admin,
    )
    assert r.status_code == 201, r.text
    r = await client.post(
        f"{API}/units/{e.a1}/manifests",
        json=_manifest(e, "HW-X-2", shipped_t=3.0, supersedes_id=first),
        headers=admin,
    )
    assert r.status_code == 409
    # The same manifest number at another smelter is its own.
    r = await client.post(f"{API}/units/{e.b1}/manifests", json=_manifest(e, "HW-X-2"), headers=admin)
    assert r.status_code == 201


async def test_registry_rules(client: httpx.AsyncClient, db: AsyncSession, env: Env) -> None:
    e = env
    admin = e.h("bureau_admin")
    for coefficient in (1, 4.99, 300.01, 5000, "Infinity"):
        r = await client.post(
            f"{API}/units/{e.a1}/processes",
            content=f'{{"name": "新炉", "coefficient_kg_per_t": {coefficient}}}',
            headers={**admin, "Content-Type": "application/json"},
        )
        assert r.status_code == 422, (coefficient, r.text)
        assert "coefficient_kg_per_t" in [d["field"] for d in r.json()["error"]["details"]]
    r = await client.post(
        f"{API}/units/{e.a1}/processes", json={"name": "回转炉", "coefficient_kg_per_t": 60}, headers=admin
    )
    assert r.status_code == 409
    # Re-rating a process is audited with old and new values; out of range is refused.
    url = f"{API}/units/{e.a1}/processes/{e.process_a1}"
    r = await client.patch(url, json={"coefficient_kg_per_t": 400}, headers=e.h("station_officer"))
    assert r.status_code == 422
    r = await client.patch(
        url, json={"coefficient_kg_per_t": 45, "active": False}, headers=e.h("station_officer")
    )
    assert r.status_code == 200, r.text
    assert (r.json()["coefficient_kg_per_t"], r.json()["active"]) == (45, False)
    changes = await db.scalar(select(AuditLog.changes).where(AuditLog.action == "env.process.update"))
    assert changes == {"unit_id": e.a1, "coefficient_kg_per_t": [50.0, 45], "active": [True, False]}
    assert (await client.patch(url, json={"name": None}, headers=admin)).status_code == 422
    assert (await client.patch(url, json={"unit_id": e.b1}, headers=admin)).status_code == 422
    assert (await client.patch(url, json={"active": True}, headers=e.h("unit_security"))).status_code == 403
    other = f"{API}/units/{e.b1}/processes/{e.process_a1}"  # a1's process under b1's address
    assert (await client.patch(other, json={"active": True}, headers=admin)).status_code == 404
    # A production must use a process of the same smelter.
    r = await client.post(
        f"{API}/units/{e.a1}/production",
        json={"process_id": e.process_b1, "produced_on": f"{e.period}-03", "aluminium_t": 10},
        headers=admin,
    )
    assert r.status_code == 422
    assert r.json()["error"]["details"][0]["field"] == "process_id"
    # Duplicate facility or carrier: 409; a manifest names existing ones.
    r = await client.post(
        f"{API}/facilities",
        json={"name": "另一处置中心", "licence_no": "HW-3305-001", "licensed_capacity_t_per_year": 10},
        headers=admin,
    )
    assert r.status_code == 409
    r = await client.post(
        f"{API}/carriers", json={"name": "织里危运车队", "licence_no": "YS-2"}, headers=admin
    )
    assert r.status_code == 409
    for key in ("carrier_id", "facility_id"):
        body = {**_manifest(e, f"HW-{key[:3]}"), key: 424242}
        r = await client.post(f"{API}/units/{e.a1}/manifests", json=body, headers=admin)
        assert r.status_code == 422
        assert r.json()["error"]["details"][0]["field"] == key
    # A non-smelter unit has no ledger.
    r = await client.post(
        f"{API}/units/{e.world.units['a2']}/stock-counts",
        json={"counted_at": f"{e.period}-02T08:00:00+08:00", "ash_t": 1},
        headers=admin,
    )
    assert r.status_code == 404


async def test_injected_fields_are_refused(client: httpx.AsyncClient, db: AsyncSession, env: Env) -> None:
    e = env
    admin = e.h("bureau_admin")
    production = {"process_id": e.process_a1, "produced_on": f"{e.period}-03", "aluminium_t": 10}
    for injected in ({"id": 7}, {"unit_id": e.b1}, {"entered_by": 1}, {"created_at": "2020-01-01T00:00:00Z"}):
        r = await client.post(
            f"{API}/units/{e.a1}/production", json={**production, **injected}, headers=admin
        )
        assert r.status_code == 422, injected
        assert r.json()["error"]["details"][0]["field"] == next(iter(injected))
    r = await client.post(
        f"{API}/units/{e.a1}/manifests", json={**_manifest(e, "HW-INJ-1"), "unit_id": e.b1}, headers=admin
    )
    assert r.status_code == 422
    r = await client.post(
        f"{API}/eco-incidents",
        json={
            "kind": "sewage",
            "occurred_at": f"{e.period}-03T08:00:00+08:00",
            "lat": 30.84,
            "lng": 120.26,
            "station_id": e.world.station_a,
            "description": "排污",
            "zone_id": 1,
        },
        headers=admin,
    )
    assert r.status_code == 422
    assert await _count(db, ProductionReport) == 0
    assert await _count(db, Manifest) == 0


async def test_another_smelters_staff_get_404_and_write_nothing(
    client: httpx.AsyncClient, db: AsyncSession, env: Env
) -> None:
    e = env
    intruder = e.h("unit_security_b")
    r = await client.post(
        f"{API}/units/{e.a1}/production",
        json={"process_id": e.process_a1, "produced_on": f"{e.period}-03", "aluminium_t": 10},
        headers=intruder,
    )
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_found"
    r = await client.post(f"{API}/units/{e.a1}/manifests", json=_manifest(e, "HW-B-1"), headers=intruder)
    assert r.status_code == 404
    assert (
        await client.get(f"{API}/units/{e.a1}/ledger?period={e.period}", headers=intruder)
    ).status_code == 404
    assert (await client.get(f"{API}/smelters/{e.a1}", headers=intruder)).status_code == 404
    assert await _count(db, ProductionReport) == 0
    assert await _count(db, Manifest) == 0
    # Its own smelter works.
    r = await client.post(
        f"{API}/units/{e.b1}/production",
        json={"process_id": e.process_b1, "produced_on": f"{e.period}-03", "aluminium_t": 10},
        headers=intruder,
    )
    assert r.status_code == 201


async def test_full_check_run_finds_a_facility_over_its_licence(
    client: httpx.AsyncClient, db: AsyncSession, env: Env
) -> None:
    e = env
    admin = e.h("bureau_admin")
    r = await client.post(
        f"{API}/facilities",
        json={
            "name": "小型处置站",
            "licence_no": "HW-SMALL",
            "licensed_capacity_t_per_year": 1,
            "in_district": False,
        },
        headers=admin,
    )
    small = r.json()["id"]
    r = await client.post(
        f"{API}/units/{e.a1}/manifests",
        json=_manifest(e, "HW-S-1", shipped_t=3.0, facility_id=small),
        headers=admin,
    )
    assert r.status_code == 201
    r = await client.post(
        f"{API}/units/{e.a1}/manifests/HW-S-1/receipts",
        json={"received_at": f"{e.period}-20T12:00:00+08:00", "received_t": 3.0},
        headers=admin,
    )
    assert r.status_code == 201
    assert (await client.post(f"{API}/checks", headers=e.h("station_officer"))).status_code == 403
    r = await client.post(f"{API}/checks", headers=admin)
    assert r.status_code == 200, r.text
    report = r.json()
    assert set(report) == {"created", "resolved", "still_open", "by_kind"}
    assert report["by_kind"]["facility_over_licence"] == 1
    assert await db.scalar(select(AuditLog.changes).where(AuditLog.action == "env.checks.run")) == report
    # Facility alerts (no unit) are for the bureau and station officers only.
    for who, sees in (
        ("bureau_admin", True),
        ("station_officer", True),
        ("station_officer_b", True),
        ("liaison_officer", False),
        ("unit_security", False),
        ("service_point_staff", False),
    ):
        r = await client.get(f"{API}/alerts", params={"kind": "facility_over_licence"}, headers=e.h(who))
        items = r.json()["items"]
        assert (len(items) == 1) is sees, who
        if sees:
            assert items[0]["unit_id"] is None
            assert items[0]["facility_id"] == small
            assert items[0]["evidence"]["received_t"] == pytest.approx(3.0)
    # Running again finds the same: nothing new, nothing announced twice.
    before = await _count(db, OutboxEvent)
    r = await client.post(f"{API}/checks", headers=admin)
    assert r.json()["created"] == 0
    assert await _count(db, OutboxEvent) == before


async def test_eco_records_take_their_zone_and_local_time(
    client: httpx.AsyncClient, db: AsyncSession, env: Env
) -> None:
    e = env
    zone = JointZone(
        code="qiaolou",
        name="乔溇联勤区",
        partner_agency="吴江公安",
        station_id=e.world.station_a,
        polygon=[[30.94, 120.39], [30.94, 120.41], [30.96, 120.41], [30.96, 120.39]],
    )
    db.add(zone)
    await db.commit()
    body = {
        "kind": "burning",
        "occurred_at": f"{e.period}-03T20:00:00",  # no offset: Asia/Shanghai wall-clock time
        "lat": 30.95,
        "lng": 120.40,
        "station_id": e.world.station_a,
        "description": "湖边焚烧垃圾",
    }
    r = await client.post(f"{API}/eco-incidents", json=body, headers=e.h("station_officer"))
    assert r.status_code == 201, r.text
    assert r.json()["zone_id"] == zone.id
    assert r.json()["occurred_at"].startswith(f"{e.period}-03T12:00:00")
    audit_row = await db.scalar(select(AuditLog).where(AuditLog.action == "env.eco_incident.create"))
    assert audit_row is not None
    assert audit_row.changes is not None
    assert audit_row.changes["zone_id"] == zone.id
    listed = await client.get(
        f"{API}/eco-incidents",
        params={"from": f"{e.period}-03T19:00:00", "to": f"{e.period}-03T21:00:00", "zone_id": zone.id},
        headers=e.h("bureau_admin"),
    )
    assert [i["id"] for i in listed.json()["items"]] == [r.json()["id"]]
    listed = await client.get(
        f"{API}/eco-incidents", params={"from": f"{e.period}-03T20:30:00+08:00"}, headers=e.h("bureau_admin")
    )
    assert listed.json()["total"] == 0
    r = await client.post(
        f"{API}/patrols",
        json={
            "kind": "patrol",
            "started_at": f"{e.period}-03T20:00:00+08:00",
            "ended_at": f"{e.period}-03T19:00:00+08:00",
            "lat": 30.95,
            "lng": 120.40,
            "station_id": e.world.station_a,
        },
        headers=e.h("station_officer"),
    )
    assert r.status_code == 422
    assert r.json()["error"]["details"][0]["field"] == "ended_at"


# --- bad input is a 4xx, never a 500 ---------------------------------------------------------------


async def test_bad_input_is_4xx_never_500(client: httpx.AsyncClient, env: Env) -> None:
    e, P = env, env.period
    admin = e.h("bureau_admin")
    huge = 2**63
    good_production = {"process_id": e.process_a1, "produced_on": f"{P}-03", "aluminium_t": 10}
    good_eco = {
        "kind": "fishing",
        "occurred_at": f"{P}-03T08:00:00+08:00",
        "lat": 30.84,
        "lng": 120.26,
        "station_id": e.world.station_a,
        "description": "电鱼",
    }
    cases: list[tuple[str, str, Any]] = [
        ("GET", f"/smelters/{huge}", None),
        ("GET", f"/smelters/{2**31}", None),
        ("GET", "/smelters/-1", None),
        ("GET", "/smelters/abc", None),
        ("GET", f"/smelters?station_id={huge}", None),
        ("GET", "/smelters?q=%00", None),
        ("GET", "/smelters?limit=0", None),
        ("GET", f"/smelters?offset={huge}", None),
        ("GET", f"/units/{e.a1}/ledger", None),
        ("GET", f"/units/{e.a1}/ledger?period=2026-13", None),
        ("GET", f"/units/{e.a1}/ledger?period=0001-01", None),
        ("GET", f"/units/{e.a1}/ledger?period=9999-12", None),
        ("GET", f"/units/{huge}/ledger?period={P}", None),
        ("GET", f"/units/{e.a1}/balance?months=0", None),
        ("GET", f"/units/{e.a1}/balance?months=36&until=2000-06", None),
        ("GET", "/balance?period=26-01", None),
        ("GET", "/balance?period=0001-01", None),
        ("GET", "/balance?status=purple", None),
        ("GET", "/alerts?status=closed", None),
        ("GET", "/alerts?kind=nope", None),
        ("GET", f"/alerts/{huge}", None),
        ("GET", "/alerts?period=%00", None),
        ("GET", "/eco-incidents?from=0001-01-01T00:00:00", None),
        ("GET", "/eco-incidents?from=yesterday", None),
        ("GET", "/patrols?to=9999-12-31T23:59:59-12:00", None),
        ("GET", f"/zones/{huge}", None),
        ("GET", f"/facilities/{huge}", None),
        ("GET", f"/carriers/{huge}", None),
        ("POST", f"/units/{e.a1}/production", {**good_production, "process_id": huge}),
        ("POST", f"/units/{e.a1}/production", {**good_production, "supersedes_id": huge}),
        ("POST", f"/units/{e.a1}/production", {**good_production, "produced_on": "0001-01-01"}),
        ("POST", f"/units/{e.a1}/production", {**good_production, "produced_on": "2999-01-01"}),
        ("POST", f"/units/{e.a1}/production", {**good_production, "produced_on": f"{P}-32"}),
        ("POST", f"/units/{e.a1}/production", {**good_production, "aluminium_t": -1}),
        ("POST", f"/units/{e.a1}/production", {**good_production, "aluminium_t": "NaN"}),
        ("POST", f"/units/{e.a1}/production", {**good_production, "note": "a\x00b"}),
        ("POST", f"/units/{e.a1}/production", {**good_production, "process_id": None}),
        ("POST", f"/units/{e.a1}/production", [good_production]),
        ("POST", f"/units/{e.a1}/production", "not json"),
        ("POST", f"/units/{e.a1}/stock-counts", {"counted_at": "0001-01-01T00:00:00+14:00", "ash_t": 1}),
        ("POST", f"/units/{e.a1}/stock-counts", {"counted_at": "9999-12-31T23:00:00-12:00", "ash_t": 1}),
        ("POST", f"/units/{e.a1}/stock-counts", {"counted_at": "2999-01-01T00:00:00+08:00", "ash_t": 1}),
        ("POST", f"/units/{e.a1}/stock-counts", {"counted_at": f"{P}-03T08:00:00", "ash_t": 1e300}),
        ("POST", f"/units/{e.a1}/manifests", _manifest(e, "HW-BAD-1", carrier_id=huge)),
        ("POST", f"/units/{e.a1}/manifests", _manifest(e, "HW-BAD-2", facility_id=-5)),
        ("POST", f"/units/{e.a1}/manifests", _manifest(e, "HW BAD 3")),
        ("POST", f"/units/{e.a1}/manifests", _manifest(e, "HW-BAD-4", vehicle_plate="浙E1\x002345")),
        ("POST", f"/units/{e.a1}/manifests", _manifest(e, "HW-BAD-5", shipped_t=0)),
        (
            "POST",
            f"/units/{e.a1}/manifests/HW%00X/receipts",
            {"received_at": f"{P}-03T08:00:00Z", "received_t": 1},
        ),
        (
            "POST",
            f"/units/{e.a1}/manifests/NOPE-1/receipts",
            {"received_at": f"{P}-03T08:00:00Z", "received_t": 1},
        ),
        ("POST", f"/units/{e.a1}/processes", {"name": "炉\x00", "coefficient_kg_per_t": 50}),
        ("POST", f"/units/{huge}/processes", {"name": "炉", "coefficient_kg_per_t": 50}),
        ("PATCH", f"/units/{e.a1}/processes/{huge}", {"active": False}),
        (
            "POST",
            "/facilities",
            {"name": "处置\x00", "licence_no": "HW-N", "licensed_capacity_t_per_year": 1},
        ),
        (
            "POST",
            "/facilities",
            {"name": "处置中心Z", "licence_no": "HW-Z", "licensed_capacity_t_per_year": "Infinity"},
        ),
        (
            "POST",
            "/facilities",
            {"name": "处置中心Y", "licence_no": "HW-Y", "licensed_capacity_t_per_year": 1, "lat": 91},
        ),
        ("POST", "/carriers", {"name": "车", "licence_no": "YS-9"}),
        ("POST", "/eco-incidents", {**good_eco, "station_id": huge}),
        ("POST", "/eco-incidents", {**good_eco, "station_id": 424242}),
        ("POST", "/eco-incidents", {**good_eco, "kind": "poaching"}),
        ("POST", "/eco-incidents", {**good_eco, "lat": "NaN"}),
        ("POST", "/eco-incidents", {**good_eco, "occurred_at": "2999-01-01T00:00:00Z"}),
        ("POST", "/eco-incidents", {**good_eco, "description": "\x00\x00\x00"}),
        ("POST", "/patrols", {**good_eco, "kind": "patrol", "started_at": good_eco["occurred_at"]}),
        (
            "POST",
            "/patrols",
            {
                "kind": "patrol",
                "started_at": f"{P}-03T08:00:00Z",
                "lat": 30.84,
                "lng": 120.26,
                "station_id": e.world.station_a,
                "people_count": 2**40,
            },
        ),
    ]
    for method, path, body in cases:
        if isinstance(body, str):
            r = await client.request(
                method, API + path, content=body, headers={**admin, "Content-Type": "application/json"}
            )
        else:
            r = await client.request(method, API + path, json=body, headers=admin)
        assert 400 <= r.status_code < 500, (method, path, body, r.status_code, r.text)
        assert set(r.json()) == {"error"}, (method, path)


async def test_list_filters_and_paging(client: httpx.AsyncClient, env: Env) -> None:
    e = env
    admin = e.h("bureau_admin")

    async def smelters(**params: Any) -> list[int]:
        r = await client.get(f"{API}/smelters", params=params, headers=admin)
        assert r.status_code == 200, r.text
        return [s["unit_id"] for s in r.json()["items"]]

    assert sorted(await smelters()) == sorted([e.a1, e.b1])
    assert await smelters(station_id=e.world.station_b) == [e.b1]
    assert await smelters(q="贝贝") == [e.a1]
    assert await smelters(q="100%_") == []  # LIKE metacharacters are searched literally
    assert await smelters(zone_id=1) == []
    r = await client.get(f"{API}/smelters", params={"limit": 1, "offset": 1}, headers=admin)
    assert (len(r.json()["items"]), r.json()["total"]) == (1, 2)
    # Renaming a process to a name the smelter already uses is a conflict.
    r = await client.post(
        f"{API}/units/{e.a1}/processes", json={"name": "精炼炉", "coefficient_kg_per_t": 20}, headers=admin
    )
    assert r.status_code == 201
    url = f"{API}/units/{e.a1}/processes/{e.process_a1}"
    assert (await client.patch(url, json={"name": "精炼炉"}, headers=admin)).status_code == 409
    r = await client.patch(url, json={"name": "一号回转炉"}, headers=admin)
    assert r.json()["name"] == "一号回转炉"
    # Balance board: by station and by status, paged.
    r = await client.get(
        f"{API}/balance", params={"period": e.period, "station_id": e.world.station_a}, headers=admin
    )
    assert [row["unit_id"] for row in r.json()["items"]] == [e.a1]
    assert r.json()["items"][0]["status"] == "no_data"
    r = await client.get(f"{API}/balance", params={"period": e.period, "status": "red"}, headers=admin)
    assert r.json() == {"items": [], "total": 0}
    r = await client.get(f"{API}/balance", params={"period": e.period, "limit": 1}, headers=admin)
    assert (len(r.json()["items"]), r.json()["total"]) == (1, 2)
    # Alerts: one unaccounted month for a1, filtered by period, unit and status.
    r = await client.post(
        f"{API}/units/{e.a1}/production",
        json={"process_id": e.process_a1, "produced_on": f"{e.period}-03", "aluminium_t": 100},
        headers=admin,
    )
    assert r.status_code == 201
    for params, n in (
        ({"period": e.period}, 1),
        ({"period": e.previous}, 0),
        ({"unit_id": e.b1}, 0),
        ({"status": "all", "kind": "unaccounted_ash"}, 1),
        ({"status": "resolved"}, 0),
        ({"facility_id": e.facility}, 0),
    ):
        r = await client.get(f"{API}/alerts", params=params, headers=admin)
        assert r.json()["total"] == n, params
    r = await client.get(f"{API}/alerts", params={"period": e.period}, headers=admin)
    alert = r.json()["items"][0]
    assert alert["unit_name"] == "织里贝贝童装有限公司"
    assert alert["evidence"]["expected_t"] == pytest.approx(5.0)
    r = await client.get(f"{API}/alerts/{alert['id']}", headers=e.h("unit_security_b"))
    assert r.status_code == 404
