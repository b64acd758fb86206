"""The aluminium-ash checks: each alert kind on a constructed case, idempotence, resolution, outbox.

``NOW`` is 2026-04-10 12:00 in Asia/Shanghai: the window runs from April 2025 to April 2026, the
30-day activity windows from 2026-03-11 12:00.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from eqian.core.outbox import OutboxEvent
from eqian.environment import checks
from eqian.environment.checks import CheckReport, run_checks
from eqian.environment.models import EnvAlert
from tests.environment import EnvWorld, local, make_env_world

D = dt.date
NOW = local(2026, 4, 10, 12)
LATER = NOW + dt.timedelta(hours=1)


@pytest.fixture
async def w(db: AsyncSession) -> EnvWorld:
    world = await make_env_world(db)
    await clean(world)
    return world


async def clean(w: EnvWorld) -> None:
    """s1 produces 100 t (4.0 t ash) on 10 days and ships it all, confirmed in full within a day."""
    for day in [D(2026, 3, d) for d in (15, 18, 21, 24, 27, 30)] + [D(2026, 4, d) for d in (2, 4, 6, 8)]:
        await w.production("s1.rotary", day, 100)
    await w.manifest("s1", "ZL2603101", local(2026, 3, 28, 10), 24.0)  # March: 6 × 4.0
    await w.receipt("s1", "ZL2603101", local(2026, 3, 29, 9), 24.0)
    await w.manifest("s1", "ZL2604101", local(2026, 4, 8, 10), 16.0)  # April so far: 4 × 4.0
    await w.receipt("s1", "ZL2604101", local(2026, 4, 9, 9), 16.0)


async def alerts(db: AsyncSession) -> list[EnvAlert]:
    query = select(EnvAlert).order_by(EnvAlert.id).execution_options(populate_existing=True)
    return list(await db.scalars(query))


async def by_fingerprint(db: AsyncSession) -> dict[str, EnvAlert]:
    return {a.fingerprint: a for a in await alerts(db)}


async def events(db: AsyncSession) -> list[dict[str, Any]]:
    query = (
        select(OutboxEvent.payload).where(OutboxEvent.topic == "environment.alert").order_by(OutboxEvent.id)
    )
    return list(await db.scalars(query))


async def test_the_clean_world_raises_nothing(db: AsyncSession, w: EnvWorld) -> None:
    assert await run_checks(db, now=NOW) == CheckReport(created=0, resolved=0, still_open=0, by_kind={})
    assert await alerts(db) == []
    assert await events(db) == []


async def test_naive_now_is_refused(db: AsyncSession) -> None:
    with pytest.raises(ValueError, match="naive"):
        await run_checks(db, now=dt.datetime(2026, 4, 10, 12))  # noqa: DTZ001 - the point of the test


# --- unaccounted_ash ---------------------------------------------------------------------------------


async def test_unaccounted_ash_fires_red_only_and_comes_back(db: AsyncSession, w: EnvWorld) -> None:
    # s2, March 2026: 1000 t × 40 = 40.0 t expected; 30.0 shipped and received; no stock counts.
    # unaccounted 10.0 > 2 × tolerance max(2.0, 0.5) → red, ash missing.
    p = await w.production("s2.rotary", D(2026, 3, 15), 1000)
    m = await w.manifest("s2", "ZL2603201", local(2026, 3, 20, 10), 30.0)
    r = await w.receipt("s2", "ZL2603201", local(2026, 3, 21, 9), 30.0)
    report = await run_checks(db, now=NOW)
    assert report == CheckReport(created=1, resolved=0, still_open=0, by_kind={"unaccounted_ash": 1})
    [alert] = await alerts(db)
    s2 = w.units["s2"]
    assert (
        alert.fingerprint,
        alert.unit_id,
        alert.facility_id,
        alert.kind,
        alert.severity,
        alert.period,
    ) == (
        f"unaccounted_ash:{s2}:2026-03",
        s2,
        None,
        "unaccounted_ash",
        "red",
        "2026-03",
    )
    assert alert.message == (
        "湖州织里乙铝业有限公司 2026-03 铝灰去向不明 10.0 吨"
        "（产生 40.0 吨，已处置 30.0 吨，库存变化 +0.0 吨，容差 2.0 吨）"
    )
    assert alert.evidence == {
        "unit_id": s2,
        "unit_name": "湖州织里乙铝业有限公司",
        "period": "2026-03",
        "aluminium_t": 1000.0,
        "expected_t": 40.0,
        "shipped_t": 30.0,
        "unconfirmed_t": 0.0,
        "stock_start_t": None,
        "stock_end_t": None,
        "delta_stock_t": 0.0,
        "accounted_t": 30.0,
        "unaccounted_t": 10.0,
        "tolerance_t": 2.0,
        "status": "red",
        "production_ids": [p],
        "manifest_ids": [m],
        "receipt_ids": [r],
        "stock_ids": [],
        "ids_truncated": False,
    }
    assert alert.created_at == NOW
    assert await events(db) == [
        {
            "alert_id": alert.id,
            "unit_id": s2,
            "facility_id": None,
            "kind": "unaccounted_ash",
            "station_id": w.station,
            "zone_id": None,
        }
    ]

    # Amber (3.0 ≤ 2 × 2.0) is no alert: the open one is resolved.
    r = await w.receipt("s2", "ZL2603201", local(2026, 3, 21, 9), 37.0, supersedes=r)
    assert await run_checks(db, now=LATER) == CheckReport(created=0, resolved=1, still_open=0, by_kind={})
    [alert] = await alerts(db)
    assert (alert.status, alert.resolved_at) == ("resolved", LATER)
    # A red surplus (−5.0: more accounted than generated) is no "ash missing" alert either.
    r = await w.receipt("s2", "ZL2603201", local(2026, 3, 21, 9), 45.0, supersedes=r)
    assert await run_checks(db, now=LATER) == CheckReport(created=0, resolved=0, still_open=0, by_kind={})
    # Back to 30.0: the same alert is reopened, and told once more.
    await w.receipt("s2", "ZL2603201", local(2026, 3, 21, 9), 30.0, supersedes=r)
    report = await run_checks(db, now=LATER)
    assert report == CheckReport(created=1, resolved=0, still_open=0, by_kind={"unaccounted_ash": 1})
    [reopened] = await alerts(db)
    assert (reopened.id, reopened.status, reopened.resolved_at, reopened.created_at) == (
        alert.id,
        "open",
        None,
        NOW,
    )
    assert [e["alert_id"] for e in await events(db)] == [alert.id, alert.id]


# --- manifest_unconfirmed ----------------------------------------------------------------------------


async def test_manifest_unconfirmed_after_48_hours(db: AsyncSession, w: EnvWorld) -> None:
    s1 = w.units["s1"]
    late = await w.manifest("s1", "ZL2604102", local(2026, 4, 8, 11), 5.0)  # 49 h: 1 h overdue → amber
    await w.manifest("s1", "ZL2604103", local(2026, 4, 8, 12), 5.0)  # exactly 48 h: not yet
    await w.manifest("s1", "ZL2604104", local(2026, 4, 5, 12), 2.0)  # 120 h: 72 h overdue (> 48) → red
    report = await run_checks(db, now=NOW)
    assert report == CheckReport(created=2, resolved=0, still_open=0, by_kind={"manifest_unconfirmed": 2})
    found = await by_fingerprint(db)
    assert sorted(found) == [f"manifest_unconfirmed:{s1}:ZL2604102", f"manifest_unconfirmed:{s1}:ZL2604104"]
    alert = found[f"manifest_unconfirmed:{s1}:ZL2604102"]
    assert (alert.severity, alert.period, alert.unit_id) == ("amber", "2026-04", s1)
    assert found[f"manifest_unconfirmed:{s1}:ZL2604104"].severity == "red"
    assert alert.message == (
        "湖州织里甲铝业有限公司 联单 ZL2604102（2026-04-08 11:00 发出 5.00 吨，运往 长兴危废处置中心）"
        "超过 48 小时未经接收单位确认，已超时 1.0 小时"
    )
    assert alert.evidence == {
        "manifest_id": late,
        "manifest_no": "ZL2604102",
        "shipped_at": "2026-04-08T03:00:00+00:00",
        "shipped_t": 5.0,
        "vehicle_plate": "浙E·A1234",
        "facility_id": w.facility,
        "facility_name": "长兴危废处置中心",
        "confirm_within_hours": 48.0,
        "hours_overdue": 1.0,
    }
    # s1 is in the joint zone: the partner agency hears of it too.
    assert {(e["unit_id"], e["station_id"], e["zone_id"], e["kind"]) for e in await events(db)} == {
        (s1, w.station, w.zone, "manifest_unconfirmed")
    }
    assert len(await events(db)) == 2

    # An hour later the facility has confirmed ZL2604102: resolved; ZL2604104 stays open, untold
    # again; ZL2604103 is now 49 h old and becomes an alert of its own.
    await w.receipt("s1", "ZL2604102", local(2026, 4, 10, 12, 30), 5.0)
    report = await run_checks(db, now=LATER)
    assert report == CheckReport(created=1, resolved=1, still_open=1, by_kind={"manifest_unconfirmed": 2})
    found = await by_fingerprint(db)
    confirmed = found[f"manifest_unconfirmed:{s1}:ZL2604102"]
    assert (confirmed.status, confirmed.resolved_at) == ("resolved", LATER)
    assert found[f"manifest_unconfirmed:{s1}:ZL2604104"].status == "open"
    assert found[f"manifest_unconfirmed:{s1}:ZL2604103"].status == "open"
    assert [e["alert_id"] for e in await events(db)][-1] == found[f"manifest_unconfirmed:{s1}:ZL2604103"].id
    assert len(await events(db)) == 3


# --- weight_shortfall --------------------------------------------------------------------------------


async def test_weight_shortfall_beyond_two_percent(db: AsyncSession, w: EnvWorld) -> None:
    s1 = w.units["s1"]
    short = await w.manifest("s1", "ZL2604201", local(2026, 4, 5, 10), 10.0)
    receipt = await w.receipt("s1", "ZL2604201", local(2026, 4, 6, 9), 9.79)  # 0.21 > 0.2 → amber
    await w.manifest("s1", "ZL2604202", local(2026, 4, 5, 11), 10.0)
    await w.receipt("s1", "ZL2604202", local(2026, 4, 6, 9), 9.8)  # 0.2 = 2 %: within tolerance
    await w.manifest("s1", "ZL2604203", local(2026, 4, 5, 12), 10.0)
    await w.receipt("s1", "ZL2604203", local(2026, 4, 6, 9), 9.5)  # 0.5 > 2 × 0.2 → red
    report = await run_checks(db, now=NOW)
    assert report == CheckReport(created=2, resolved=0, still_open=0, by_kind={"weight_shortfall": 2})
    found = await by_fingerprint(db)
    assert sorted(found) == [f"weight_shortfall:{s1}:ZL2604201", f"weight_shortfall:{s1}:ZL2604203"]
    alert = found[f"weight_shortfall:{s1}:ZL2604201"]
    assert (alert.severity, found[f"weight_shortfall:{s1}:ZL2604203"].severity) == ("amber", "red")
    assert alert.message == (
        "湖州织里甲铝业有限公司 联单 ZL2604201 发出 10.00 吨，长兴危废处置中心 仅接收 9.79 吨，"
        "短少 0.21 吨（2.1%，容差 2%）"
    )
    assert alert.evidence == {
        "manifest_id": short,
        "manifest_no": "ZL2604201",
        "shipped_at": "2026-04-05T02:00:00+00:00",
        "shipped_t": 10.0,
        "vehicle_plate": "浙E·A1234",
        "facility_id": w.facility,
        "facility_name": "长兴危废处置中心",
        "receipt_id": receipt,
        "received_at": "2026-04-06T01:00:00+00:00",
        "received_t": 9.79,
        "shortfall_t": 0.21,
        "shortfall_pct": 2.1,
        "weight_tolerance_pct": 2.0,
    }
    # The facility corrects its weight: resolved; a later correction short again reopens the same alert.
    receipt = await w.receipt("s1", "ZL2604201", local(2026, 4, 6, 9), 10.0, supersedes=receipt)
    assert (await run_checks(db, now=LATER)).resolved == 1
    await w.receipt("s1", "ZL2604201", local(2026, 4, 6, 9), 9.7, supersedes=receipt)
    report = await run_checks(db, now=LATER)
    assert report == CheckReport(created=1, resolved=0, still_open=1, by_kind={"weight_shortfall": 2})
    assert [e["alert_id"] for e in await events(db)].count(alert.id) == 2
    assert len(await alerts(db)) == 2


# --- facility_over_licence ---------------------------------------------------------------------------


async def test_facility_over_licence_by_local_calendar_year(db: AsyncSession, w: EnvWorld) -> None:
    small = w.small_facility  # 40 t/yr
    f1 = await w.manifest("s1", "ZL2604301", local(2026, 4, 1, 10), 30.0, facility=small)
    await w.receipt("s1", "ZL2604301", local(2026, 4, 2, 9), 30.0)
    f2 = await w.manifest("s1", "ZL2604302", local(2026, 4, 3, 10), 10.0, facility=small)
    await w.receipt("s1", "ZL2604302", local(2026, 4, 4, 9), 10.0)
    # 2026: 40.0 received = the licence, not over it.
    assert await run_checks(db, now=NOW) == CheckReport(created=0, resolved=0, still_open=0, by_kind={})
    # Received 2026-01-01 00:30 local = 2025-12-31 16:30 UTC: a 2026 receipt, 40.5 > 40.
    f3 = await w.manifest("s1", "ZL2512301", local(2025, 12, 31, 20), 0.5, facility=small)
    await w.receipt("s1", "ZL2512301", local(2026, 1, 1, 0, 30), 0.5)
    report = await run_checks(db, now=NOW)
    assert report == CheckReport(created=1, resolved=0, still_open=0, by_kind={"facility_over_licence": 1})
    [alert] = await alerts(db)
    assert (alert.fingerprint, alert.unit_id, alert.facility_id, alert.period, alert.severity) == (
        f"facility_over_licence:{small}:2026",
        None,
        small,
        "2026",
        "red",
    )
    assert (
        alert.message == "南浔小型处置站 2026 年接收铝灰 40.5 吨，超过许可处置能力 40.0 吨/年（超出 0.5 吨）"
    )
    assert alert.evidence == {
        "facility_id": small,
        "facility_name": "南浔小型处置站",
        "year": 2026,
        "received_t": 40.5,
        "licensed_capacity_t_per_year": 40.0,
        "excess_t": 0.5,
        "manifest_count": 3,
        "manifest_ids": sorted([f1, f2, f3]),
    }
    assert await events(db) == [
        {
            "alert_id": alert.id,
            "unit_id": None,
            "facility_id": small,
            "kind": "facility_over_licence",
            "station_id": None,
            "zone_id": None,
        }
    ]
    # A run scoped to units cannot judge a facility: it neither finds nor resolves the alert.
    report = await run_checks(db, now=LATER, unit_ids=[w.units["s1"]])
    assert report == CheckReport(created=0, resolved=0, still_open=0, by_kind={})
    [alert] = await alerts(db)
    assert alert.status == "open"


# --- activity ----------------------------------------------------------------------------------------


async def test_shipping_without_production(db: AsyncSession, w: EnvWorld) -> None:
    # s3 produced in February only (100 t × 40 = 4.0 t, counted in stock at month end), reports
    # zero on 04-01 and ships the 4.0 t on 04-01: balances are green, but nothing was produced
    # in the 30 days before NOW.
    await w.production("s3.rotary", D(2026, 2, 20), 100)
    await w.stock("s3", local(2026, 2, 28, 18), 4.0)
    zero = await w.production("s3.rotary", D(2026, 4, 1), 0)
    m = await w.manifest("s3", "ZL2604401", local(2026, 4, 1, 10), 4.0)
    await w.receipt("s3", "ZL2604401", local(2026, 4, 2, 9), 4.0)
    await w.stock("s3", local(2026, 4, 2, 18), 0.0)
    report = await run_checks(db, now=NOW)
    assert report == CheckReport(
        created=1, resolved=0, still_open=0, by_kind={"shipping_without_production": 1}
    )
    [alert] = await alerts(db)
    s3 = w.units["s3"]
    assert (alert.fingerprint, alert.severity, alert.period) == (
        f"shipping_without_production:{s3}",
        "red",
        "2026-04",
    )
    assert alert.message == "湖州织里丙铝业有限公司 近 30 天无生产记录，却转移铝灰 1 车 4.0 吨"
    assert alert.evidence == {
        "window_start": "2026-03-11T04:00:00+00:00",
        "window_end": "2026-04-10T04:00:00+00:00",
        "lookback_days": 30,
        "manifest_count": 1,
        "shipped_t": 4.0,
        "manifest_ids": [m],
    }
    # The zero report was wrong: 10 t (0.4 t ash, within the 0.5 t tolerance). Resolved.
    await w.production("s3.rotary", D(2026, 4, 1), 10, supersedes=zero)
    assert await run_checks(db, now=LATER) == CheckReport(created=0, resolved=1, still_open=0, by_kind={})


async def test_production_without_shipments_needs_seven_days(db: AsyncSession, w: EnvWorld) -> None:
    # s4 (反射炉 25 kg/t) last shipped on 2026-02-01, then produced 100 t (2.5 t ash) every other day
    # from 03-20, keeping it all in stock (balances green).
    await w.stock("s4", local(2026, 1, 31, 18), 3.0)
    await w.manifest("s4", "ZL2602401", local(2026, 2, 1, 10), 3.0)
    await w.receipt("s4", "ZL2602401", local(2026, 2, 2, 9), 3.0)
    await w.stock("s4", local(2026, 2, 28, 18), 0.0)
    produced = [await w.production("s4.reverb", D(2026, 3, day), 100) for day in (20, 22, 24, 26, 28, 30)]
    await w.stock("s4", local(2026, 3, 31, 18), 15.0)
    # Six production days in the window: too early to tell.
    assert await run_checks(db, now=NOW) == CheckReport(created=0, resolved=0, still_open=0, by_kind={})
    produced.append(await w.production("s4.reverb", D(2026, 4, 1), 100))
    await w.stock("s4", local(2026, 4, 5, 18), 17.5)
    report = await run_checks(db, now=NOW)
    assert report == CheckReport(
        created=1, resolved=0, still_open=0, by_kind={"production_without_shipments": 1}
    )
    [alert] = await alerts(db)
    assert (alert.fingerprint, alert.severity, alert.period) == (
        f"production_without_shipments:{w.units['s4']}",
        "amber",
        "2026-04",
    )
    assert alert.message == (
        "湖州织里丁铝业有限公司 近 30 天生产 7 天（铝 700.0 吨，应产生铝灰 17.5 吨），却无一张铝灰转移联单"
    )
    assert alert.evidence == {
        "window_start": "2026-03-11T04:00:00+00:00",
        "window_end": "2026-04-10T04:00:00+00:00",
        "max_days_without_shipment": 30,
        "production_days": 7,
        "aluminium_t": 700.0,
        "expected_ash_t": 17.5,
        "last_shipped_at": "2026-02-01T02:00:00+00:00",
        "production_ids": produced,
    }


# --- idempotence, scope, window, transaction --------------------------------------------------------


async def dirty(w: EnvWorld) -> None:
    """One finding of each unit-level kind: s2 unaccounted, s1 unconfirmed and short."""
    await w.production("s2.rotary", D(2026, 3, 15), 1000)
    await w.manifest("s2", "ZL2603201", local(2026, 3, 20, 10), 30.0)
    await w.receipt("s2", "ZL2603201", local(2026, 3, 21, 9), 30.0)
    await w.manifest("s1", "ZL2604102", local(2026, 4, 8, 11), 5.0)
    await w.manifest("s1", "ZL2604201", local(2026, 4, 5, 10), 10.0)
    await w.receipt("s1", "ZL2604201", local(2026, 4, 6, 9), 9.5)


async def test_rerunning_is_idempotent(db: AsyncSession, w: EnvWorld) -> None:
    await dirty(w)
    first = await run_checks(db, now=NOW)
    kinds = {"unaccounted_ash": 1, "manifest_unconfirmed": 1, "weight_shortfall": 1}
    assert first == CheckReport(created=3, resolved=0, still_open=0, by_kind=kinds)
    before = [(a.id, a.status, a.message, a.evidence) for a in await alerts(db)]
    assert len(await events(db)) == 3
    second = await run_checks(db, now=NOW)
    assert second == CheckReport(created=0, resolved=0, still_open=3, by_kind=kinds)
    assert [(a.id, a.status, a.message, a.evidence) for a in await alerts(db)] == before
    assert len(await events(db)) == 3
    # Later, the evidence is refreshed in place (the unconfirmed manifest is 24 h more overdue).
    await run_checks(db, now=NOW + dt.timedelta(hours=24))
    refreshed = await by_fingerprint(db)
    assert refreshed[f"manifest_unconfirmed:{w.units['s1']}:ZL2604102"].evidence["hours_overdue"] == 25.0
    assert len(refreshed) == 3
    assert len(await events(db)) == 3


async def test_unit_ids_restrict_what_is_checked_and_resolved(db: AsyncSession, w: EnvWorld) -> None:
    await dirty(w)
    s1, s2 = w.units["s1"], w.units["s2"]
    report = await run_checks(db, now=NOW, unit_ids=[s2])
    assert report == CheckReport(created=1, resolved=0, still_open=0, by_kind={"unaccounted_ash": 1})
    assert [(a.unit_id, a.kind) for a in await alerts(db)] == [(s2, "unaccounted_ash")]
    assert [e["unit_id"] for e in await events(db)] == [s2]
    # s2's data is fixed, but a run over s1 leaves s2's alert alone.
    await w.manifest("s2", "ZL2603202", local(2026, 3, 25, 10), 10.0)
    await w.receipt("s2", "ZL2603202", local(2026, 3, 26, 9), 10.0)
    report = await run_checks(db, now=NOW, unit_ids=[s1])
    assert report == CheckReport(
        created=2, resolved=0, still_open=0, by_kind={"manifest_unconfirmed": 1, "weight_shortfall": 1}
    )
    assert {a.fingerprint: a.status for a in await alerts(db)}[f"unaccounted_ash:{s2}:2026-03"] == "open"
    report = await run_checks(db, now=NOW, unit_ids=[s2, w.units["g1"]])
    assert report == CheckReport(created=0, resolved=1, still_open=0, by_kind={})
    assert await run_checks(db, now=NOW, unit_ids=[]) == CheckReport(0, 0, 0, {})


async def test_alerts_of_months_before_the_window_are_left_alone(db: AsyncSession, w: EnvWorld) -> None:
    s1 = w.units["s1"]

    def old(fingerprint: str, kind: str, period: str) -> EnvAlert:
        return EnvAlert(
            fingerprint=fingerprint,
            unit_id=None if kind == "facility_over_licence" else s1,
            facility_id=w.facility if kind == "facility_over_licence" else None,
            kind=kind,
            severity="red",
            period=period,
            message="旧预警",
            evidence={},
        )

    db.add_all(
        [
            old(f"unaccounted_ash:{s1}:2025-03", "unaccounted_ash", "2025-03"),  # before the window
            old(f"unaccounted_ash:{s1}:2025-04", "unaccounted_ash", "2025-04"),  # its first month
            old(f"facility_over_licence:{w.facility}:2024", "facility_over_licence", "2024"),
            old(f"facility_over_licence:{w.facility}:2025", "facility_over_licence", "2025"),
            old(f"production_without_shipments:{s1}", "production_without_shipments", "2025-01"),
        ]
    )
    await db.flush()
    assert await run_checks(db, now=NOW) == CheckReport(created=0, resolved=3, still_open=0, by_kind={})
    assert {a.period: a.status for a in await alerts(db)} == {
        "2025-03": "open",
        "2025-04": "resolved",
        "2024": "open",
        "2025": "resolved",
        "2025-01": "resolved",
    }


async def test_run_checks_does_not_commit(
    db: AsyncSession, w: EnvWorld, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    await dirty(w)
    async with sessionmaker() as session:
        assert (await run_checks(session, now=NOW)).created == 3
        await session.rollback()
    assert await db.scalar(select(func.count()).select_from(EnvAlert)) == 0
    assert await events(db) == []
    async with sessionmaker() as session:
        await run_checks(session, now=NOW)
        await session.commit()
    assert len(await alerts(db)) == 3
    assert len(await events(db)) == 3


async def test_a_concurrent_run_creating_the_same_alert_first_is_no_error(
    db: AsyncSession, w: EnvWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    await dirty(w)
    assert (await run_checks(db, now=NOW)).created == 3
    # This run looked before the other committed: it saw none of the alerts and tries to insert
    # them all; the inserts give way, the alerts are refreshed, nothing is announced twice.
    real = checks._alerts
    calls = 0

    async def stale_snapshot(session: AsyncSession, fingerprints: Sequence[str]) -> dict[str, EnvAlert]:
        nonlocal calls
        calls += 1
        return {} if calls == 1 else await real(session, fingerprints)

    monkeypatch.setattr(checks, "_alerts", stale_snapshot)
    report = await run_checks(db, now=NOW)
    assert report == CheckReport(
        created=0,
        resolved=0,
        still_open=3,
        by_kind={"unaccounted_ash": 1, "manifest_unconfirmed": 1, "weight_shortfall": 1},
    )
    assert calls == 2
    assert len(await alerts(db)) == 3
    assert len(await events(db)) == 3
