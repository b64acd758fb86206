"""Mass balance arithmetic on hand-computed cases, on SQLite and PostgreSQL; the thresholds file."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from eqian.environment.balance import (
    balance_series,
    compute_balance,
    entry_ids,
    month,
    period_of,
    shift_period,
)
from eqian.environment.config import EnvConfig, EnvConfigError, load_config
from eqian.environment.schemas import BalanceRow
from eqian.organizations.models import Unit
from tests.environment import NAMES, EnvWorld, local, make_env_world

D = dt.date


@pytest.fixture
async def w(db: AsyncSession) -> EnvWorld:
    return await make_env_world(db)


def row(w: EnvWorld, label: str, period: str, **values: object) -> BalanceRow:
    return BalanceRow(unit_id=w.units[label], unit_name=NAMES[label], period=period, **values)


def empty(w: EnvWorld, label: str, period: str, stock: float | None = None) -> BalanceRow:
    return row(
        w,
        label,
        period,
        aluminium_t=0.0,
        expected_t=0.0,
        shipped_t=0.0,
        unconfirmed_t=0.0,
        stock_start_t=stock,
        stock_end_t=stock,
        delta_stock_t=0.0,
        accounted_t=0.0,
        unaccounted_t=0.0,
        tolerance_t=0.5,
        status="no_data",
    )


async def s1_ledger(w: EnvWorld) -> dict[str, int]:
    """Smelter s1 (回转炉 40 kg/t, 反射炉 25 kg/t) around March 2026; returns the entry ids by label."""
    ids: dict[str, int] = {}
    # Production. February: 100 t rotary → 4.0 t ash.
    ids["p_feb"] = await w.production("s1.rotary", D(2026, 2, 28), 100)
    # March, three days, two processes:
    # 500 t rotary (20.0) + 360 t reverb (9.0, corrects 400 t) + 250 t rotary (10.0).
    ids["p1"] = await w.production("s1.rotary", D(2026, 3, 2), 500)
    ids["p2_wrong"] = await w.production("s1.reverb", D(2026, 3, 10), 400)
    ids["p2"] = await w.production("s1.reverb", D(2026, 3, 10), 360, supersedes=ids["p2_wrong"])
    ids["p3"] = await w.production("s1.rotary", D(2026, 3, 31), 250)
    # A March entry corrected into April: counts in April only (200 t reverb → 5.0).
    ids["p5_wrong"] = await w.production("s1.reverb", D(2026, 3, 20), 200)
    ids["p5"] = await w.production("s1.reverb", D(2026, 4, 2), 200, supersedes=ids["p5_wrong"])
    ids["p4"] = await w.production("s1.rotary", D(2026, 4, 1), 100)  # April: 4.0

    # Manifests. 2026-02-28 23:30 local is 15:30 UTC: February.
    await w.manifest("s1", "ZL2602009", local(2026, 2, 28, 23, 30), 3.0)
    await w.receipt("s1", "ZL2602009", local(2026, 3, 1, 9), 3.0)
    # 2026-03-01 00:10 local is 2026-02-28 16:10 UTC, and March: confirmed with less (11.8 of 12.0).
    ids["m1"] = await w.manifest("s1", "ZL2603001", local(2026, 3, 1, 0, 10), 12.0)
    ids["r1"] = await w.receipt("s1", "ZL2603001", local(2026, 3, 1, 14), 11.8)
    # A corrected manifest (10.0 → 9.5 shipped), its receipt corrected too (9.0 → 9.4 received).
    ids["m2_wrong"] = await w.manifest("s1", "ZL2603002", local(2026, 3, 15, 10), 10.0)
    ids["m2"] = await w.manifest("s1", "ZL2603002", local(2026, 3, 15, 10), 9.5, supersedes=ids["m2_wrong"])
    ids["r2_wrong"] = await w.receipt("s1", "ZL2603002", local(2026, 3, 16, 9), 9.0)
    ids["r2"] = await w.receipt("s1", "ZL2603002", local(2026, 3, 16, 9), 9.4, supersedes=ids["r2_wrong"])
    # Not confirmed: 8.0 t unconfirmed, not accounted.
    ids["m3"] = await w.manifest("s1", "ZL2603003", local(2026, 3, 25, 10), 8.0)
    # 2026-04-01 00:30 local is 2026-03-31 16:30 UTC, and April.
    ids["m4"] = await w.manifest("s1", "ZL2604001", local(2026, 4, 1, 0, 30), 6.0)
    ids["r4"] = await w.receipt("s1", "ZL2604001", local(2026, 4, 1, 10), 6.0)

    # Stock counts.
    ids["k0"] = await w.stock("s1", local(2026, 1, 20), 4.0)
    # 2026-02-28 23:00 local = 15:00 UTC, before March starts (16:00 UTC): the opening stock of March.
    ids["k1"] = await w.stock("s1", local(2026, 2, 28, 23), 5.0)
    # Counted 9.0 at 23:30 on 03-31, corrected to 9.5 at 20:00: the correction, though earlier, is the close.
    ids["k2_wrong"] = await w.stock("s1", local(2026, 3, 31, 23, 30), 9.0)
    ids["k2"] = await w.stock("s1", local(2026, 3, 31, 20), 9.5, supersedes=ids["k2_wrong"])
    # 2026-04-01 00:30 local = 03-31 16:30 UTC: April's, not March's close.
    ids["k3"] = await w.stock("s1", local(2026, 4, 1, 0, 30), 12.0)
    return ids


async def test_hand_computed_month_with_corrections_and_local_boundaries(
    db: AsyncSession, w: EnvWorld
) -> None:
    await s1_ledger(w)
    # Also data for s2 outside March, and a garment unit without processes among the ids.
    await w.stock("s2", local(2026, 1, 5), 3.0)
    rows = await compute_balance(db, list(w.units.values()), "2026-03")
    # March 2026, s1:
    #   aluminium   = 500 + 360 + 250                       = 1110 t  (400 superseded, 200 moved to April)
    #   expected    = (500×40 + 360×25 + 250×40) / 1000     = 39.0 t
    #   shipped     = 11.8 (ZL2603001) + 9.4 (ZL2603002)     = 21.2 t  (02-28 23:30 and 04-01 00:30 excluded)
    #   unconfirmed = 8.0 (ZL2603003)
    #   stock       = 5.0 (02-28 23:00) → 9.5 (03-31 20:00, correction)  Δ = +4.5
    #   accounted   = 21.2 + 4.5 = 25.7;  unaccounted = 39.0 − 25.7 = 13.3
    #   tolerance   = max(39.0 × 5 %, 0.5) = 1.95;  13.3 > 2 × 1.95 → red
    s1 = row(
        w,
        "s1",
        "2026-03",
        aluminium_t=1110.0,
        expected_t=39.0,
        shipped_t=21.2,
        unconfirmed_t=8.0,
        stock_start_t=5.0,
        stock_end_t=9.5,
        delta_stock_t=4.5,
        accounted_t=25.7,
        unaccounted_t=13.3,
        tolerance_t=1.95,
        status="red",
    )
    # By name (丁 < 丙 < 乙 < 甲), not by id; g1 has no process and no row.
    assert rows == [
        empty(w, "s4", "2026-03"),
        empty(w, "s3", "2026-03"),
        empty(w, "s2", "2026-03", stock=3.0),
        s1,
    ]


async def test_series_february_and_april(db: AsyncSession, w: EnvWorld) -> None:
    await s1_ledger(w)
    series = await balance_series(db, w.units["s1"], ["2026-02", "2026-04"])
    # February: 100 t × 40 = 4.0 expected; shipped 3.0 (02-28 23:30 local);
    #   stock 4.0 (01-20) → 5.0 (02-28 23:00) Δ +1.0; accounted 4.0; unaccounted 0.0;
    #   tolerance max(0.2, 0.5) = 0.5 → green.
    # April: 100 t × 40 + 200 t × 25 (the correction moved from March) = 4.0 + 5.0 = 9.0; shipped 6.0
    #   (04-01 00:30 local); stock 9.5 → 12.0 (04-01 00:30 local) Δ +2.5; accounted 8.5;
    #   unaccounted 0.5 = tolerance max(0.45, 0.5) → green, exactly at the boundary.
    assert series == [
        row(
            w,
            "s1",
            "2026-02",
            aluminium_t=100.0,
            expected_t=4.0,
            shipped_t=3.0,
            unconfirmed_t=0.0,
            stock_start_t=4.0,
            stock_end_t=5.0,
            delta_stock_t=1.0,
            accounted_t=4.0,
            unaccounted_t=0.0,
            tolerance_t=0.5,
            status="green",
        ),
        row(
            w,
            "s1",
            "2026-04",
            aluminium_t=300.0,
            expected_t=9.0,
            shipped_t=6.0,
            unconfirmed_t=0.0,
            stock_start_t=9.5,
            stock_end_t=12.0,
            delta_stock_t=2.5,
            accounted_t=8.5,
            unaccounted_t=0.5,
            tolerance_t=0.5,
            status="green",
        ),
    ]
    assert await balance_series(db, w.units["g1"], ["2026-03"]) == []  # not a smelter


async def test_entry_ids_are_the_effective_entries_of_the_month(db: AsyncSession, w: EnvWorld) -> None:
    ids = await s1_ledger(w)
    found = await entry_ids(db, [w.units["s1"], w.units["s2"]], "2026-03")
    assert found[w.units["s1"]] == {
        "production": sorted([ids["p1"], ids["p2"], ids["p3"]]),
        "manifest": sorted([ids["m1"], ids["m2"], ids["m3"]]),
        "receipt": sorted([ids["r1"], ids["r2"]]),
        "stock": sorted([ids["k1"], ids["k2"]]),  # the opening count and the counts within the month
    }
    assert found[w.units["s2"]] == {"production": [], "manifest": [], "receipt": [], "stock": []}


async def test_unit_ids_as_a_select_and_as_an_empty_collection(db: AsyncSession, w: EnvWorld) -> None:
    await s1_ledger(w)
    scoped = select(Unit.id).where(Unit.joint_zone_id == w.zone)  # only s1 is in the zone
    rows = await compute_balance(db, scoped, "2026-03")
    assert [(r.unit_id, r.unaccounted_t, r.status) for r in rows] == [(w.units["s1"], 13.3, "red")]
    assert await compute_balance(db, [], "2026-03") == []
    assert await compute_balance(db, [w.units["g1"]], "2026-03") == []


# --- status thresholds at their exact boundaries ----------------------------------------------------
# Each case corrects the previous entry (append-only), so one world walks through all of them.

# s2: 2500 t × 40 kg/t = 100.0 t expected in May 2026, tolerance max(5.0, 0.5) = 5.0; one manifest
# received with `received`: unaccounted = 100 − received.
STATUS_CASES = [
    (100.0, 0.0, "green"),
    (95.0, 5.0, "green"),  # = tolerance
    (94.999, 5.001, "amber"),
    (90.0, 10.0, "amber"),  # = 2 × tolerance
    (89.999, 10.001, "red"),
    (105.0, -5.0, "green"),  # a surplus: |unaccounted| counts
    (110.0, -10.0, "amber"),
    (110.001, -10.001, "red"),
]


async def test_status_boundaries(db: AsyncSession, w: EnvWorld) -> None:
    await w.production("s2.rotary", D(2026, 5, 8), 2500)
    await w.manifest("s2", "ZL2605001", local(2026, 5, 9), 120.0)
    previous = None
    seen = []
    for received, _, _ in STATUS_CASES:
        previous = await w.receipt("s2", "ZL2605001", local(2026, 5, 10), received, supersedes=previous)
        [r] = await compute_balance(db, [w.units["s2"]], "2026-05")
        assert (r.expected_t, r.shipped_t, r.tolerance_t) == (100.0, received, 5.0)
        seen.append((received, r.unaccounted_t, r.status))
    assert seen == STATUS_CASES


# s3: small productions, where the 0.5 t floor is the tolerance (5 % of ≤ 1 t is ≤ 0.05 t).
FLOOR_CASES = [
    (12.5, 0.5, "green"),  # 12.5 × 40 / 1000 = 0.5 = tolerance_min_t
    (12.525, 0.501, "amber"),
    (25.0, 1.0, "amber"),  # = 2 × 0.5
    (25.025, 1.001, "red"),
    (0.0, 0.0, "green"),  # a report of zero production is data, not no_data
]


async def test_tolerance_floor(db: AsyncSession, w: EnvWorld) -> None:
    previous = None
    seen = []
    for aluminium, _, _ in FLOOR_CASES:
        previous = await w.production("s3.rotary", D(2026, 5, 31), aluminium, supersedes=previous)
        [r] = await compute_balance(db, [w.units["s3"]], "2026-05")
        assert (r.aluminium_t, r.expected_t, r.tolerance_t) == (aluminium, r.unaccounted_t, 0.5)
        seen.append((aluminium, r.unaccounted_t, r.status))
    assert seen == FLOOR_CASES
    with pytest.raises(ValueError, match="YYYY-MM"):
        await compute_balance(db, [w.units["s3"]], "2026-5")


async def test_no_data_and_a_manifest_alone(db: AsyncSession, w: EnvWorld) -> None:
    await w.stock("s3", local(2026, 5, 3), 0.8)  # a stock count alone is no data …
    [r] = await compute_balance(db, [w.units["s3"]], "2026-05")
    # … but its delta is shown: no opening count, so Δ = 0.8 − 0.
    assert (r.status, r.stock_start_t, r.stock_end_t, r.delta_stock_t, r.unaccounted_t) == (
        "no_data",
        None,
        0.8,
        0.8,
        -0.8,
    )
    # A manifest is data; unconfirmed, it accounts for nothing: |−0.8| ≤ 2 × 0.5 → amber.
    await w.manifest("s3", "ZL2605009", local(2026, 5, 20), 1.0)
    [r] = await compute_balance(db, [w.units["s3"]], "2026-05")
    assert (r.status, r.unconfirmed_t, r.shipped_t, r.unaccounted_t) == ("amber", 1.0, 0.0, -0.8)


async def test_custom_config(db: AsyncSession, w: EnvWorld) -> None:
    await w.production("s2.rotary", D(2026, 5, 8), 2500)  # 100.0 t expected, nothing accounted
    config = dataclasses.replace(load_config(), tolerance_pct=60.0)
    [r] = await compute_balance(db, [w.units["s2"]], "2026-05", config=config)
    assert (r.tolerance_t, r.status) == (60.0, "amber")  # 100 ≤ 2 × 60


# --- periods ------------------------------------------------------------------------------------------


def test_month_bounds_in_shanghai() -> None:
    m = month("2026-12")
    assert (m.first_day, m.next_first_day) == (D(2026, 12, 1), D(2027, 1, 1))
    assert m.start == dt.datetime(2026, 11, 30, 16, tzinfo=dt.UTC)
    assert m.end == dt.datetime(2026, 12, 31, 16, tzinfo=dt.UTC)
    assert period_of(dt.datetime(2026, 3, 31, 16, 30, tzinfo=dt.UTC)) == "2026-04"
    assert period_of(dt.datetime(2026, 3, 31, 15, 59, tzinfo=dt.UTC)) == "2026-03"
    assert shift_period("2026-03", -12) == "2025-03"
    assert shift_period("2025-12", 1) == "2026-01"
    assert shift_period("2026-01", -1) == "2025-12"


@pytest.mark.parametrize("bad", ["2026-13", "2026-00", "2026-3", "202603", "2026-03-01", "", "0000-01"])
def test_bad_period_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="YYYY-MM"):
        month(bad)


def test_naive_datetime_is_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        period_of(dt.datetime(2026, 3, 1))  # noqa: DTZ001 - the point of the test


# --- the thresholds file ------------------------------------------------------------------------------

VALID = """\
version = 1
[coefficient]
min_kg_per_t = 5.0
max_kg_per_t = 300.0
[balance]
tolerance_pct = 5.0
tolerance_min_t = 0.5
[manifest]
confirm_within_hours = 48
weight_tolerance_pct = 2.0
[activity]
max_days_without_shipment = 30
production_lookback_days = 30
"""


def test_packaged_config() -> None:
    config = load_config()
    assert config is load_config()  # read once
    assert config == EnvConfig(
        version=1,
        coefficient_min_kg_per_t=5.0,
        coefficient_max_kg_per_t=300.0,
        tolerance_pct=5.0,
        tolerance_min_t=0.5,
        confirm_within_hours=48.0,
        weight_tolerance_pct=2.0,
        max_days_without_shipment=30,
        production_lookback_days=30,
    )
    assert config.coefficient_in_range(5.0)
    assert config.coefficient_in_range(300.0)
    assert not config.coefficient_in_range(300.5)


def test_config_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "env.toml"
    path.write_text(VALID.replace("tolerance_pct = 5.0", "tolerance_pct = 7"), encoding="utf-8")
    assert load_config(path).tolerance_pct == 7.0


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("tolerance_pct = 5.0", "tolerance_pct = 0", r"balance.tolerance_pct = 0 is out of range \(0, 100\)"),
        ("tolerance_pct = 5.0", "tolerance_pct = 100", r"balance.tolerance_pct = 100 is out of range"),
        ("tolerance_pct = 5.0", "tolerance_pct = -1", r"balance.tolerance_pct = -1 is out of range"),
        ("tolerance_pct = 5.0", 'tolerance_pct = "5"', r"balance.tolerance_pct must be a number"),
        ("tolerance_pct = 5.0", "tolerance_pct = true", r"balance.tolerance_pct must be a number"),
        (
            "tolerance_min_t = 0.5",
            "tolerance_min_t = -0.1",
            r"balance.tolerance_min_t = -0.1 is out of range",
        ),
        ("tolerance_pct = 5.0\n", "", r"missing balance.tolerance_pct"),
        (
            "tolerance_pct = 5.0",
            "tolerance_pct = 5.0\ntolerence_pct = 5.0",
            r"unknown key\(s\) balance.tolerence_pct",
        ),
        ("max_kg_per_t = 300.0", "max_kg_per_t = 5.0", r"min_kg_per_t \(5\) must be below"),
        ("max_days_without_shipment = 30", "max_days_without_shipment = 30.5", r"must be a whole number"),
        ("production_lookback_days = 30", "production_lookback_days = 0", r"out of range \[1, 366\]"),
        ("weight_tolerance_pct = 2.0", "weight_tolerance_pct = 100", r"out of range \[0, 100\)"),
        ("confirm_within_hours = 48", "confirm_within_hours = 0", r"out of range \(0, 8784\]"),
        ("version = 1", "version = 0", r"version = 0 is out of range"),
        ("[balance]", "[balance", r"not valid TOML"),
    ],
)
def test_invalid_config_is_refused_clearly(tmp_path: Path, old: str, new: str, message: str) -> None:
    path = tmp_path / "env.toml"
    assert old in VALID
    path.write_text(VALID.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(EnvConfigError, match=message) as info:
        load_config(path)
    assert str(path) in str(info.value)
