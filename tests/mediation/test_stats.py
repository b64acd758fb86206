"""Mediation statistics and monthly facts on a hand-built set of cases (Asia/Shanghai months)."""

from __future__ import annotations

import datetime as dt

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from eqian.core.facts import Fact
from eqian.mediation import facts
from tests.mediation.helpers import API, add_case, make_med_world


def t(month: int, day: int, hour: int = 4) -> dt.datetime:
    return dt.datetime(2026, month, day, hour, tzinfo=dt.UTC)


async def test_stats_and_facts_match_hand_counts(client: httpx.AsyncClient, db: AsyncSession) -> None:
    mw = await make_med_world(db)
    w = mw.world
    a, b = w.station_a, w.station_b
    dajie, vet, own = mw.teams["dajie"], mw.teams["veterans"], mw.teams["a1_advisors"]
    a1, b1 = w.units["a1"], w.units["b1"]
    # 平安大姐: opened Jan ×3 (two agreements in Jan recovering 1000 + 250.50, one failed in Feb),
    # opened 31 Jan 17:00 UTC = 1 Feb local, still open.
    await add_case(
        db,
        station_id=a,
        team_id=dajie,
        unit_id=a1,
        opened_at=t(1, 5),
        closed_at=t(1, 9),
        outcome="agreement",
        recovered_fen=100000,
    )
    await add_case(
        db,
        station_id=a,
        team_id=dajie,
        opened_at=t(1, 6),
        closed_at=t(1, 20),
        outcome="agreement",
        recovered_fen=25050,
    )
    await add_case(db, station_id=a, team_id=dajie, opened_at=t(1, 7), closed_at=t(2, 3), outcome="failed")
    await add_case(db, station_id=a, team_id=dajie, unit_id=a1, opened_at=t(1, 31, 17))
    # 老兵驿站: opened Feb, referred in Feb; opened Feb, agreement in March recovering 3000.
    await add_case(
        db, station_id=b, team_id=vet, unit_id=b1, opened_at=t(2, 2), closed_at=t(2, 10), outcome="referred"
    )
    await add_case(
        db,
        station_id=b,
        team_id=vet,
        unit_id=b1,
        opened_at=t(2, 12),
        closed_at=t(3, 1),
        outcome="agreement",
        recovered_fen=300000,
    )
    # a1's own advisors: opened and settled in Feb (in-unit success).
    await add_case(
        db,
        station_id=a,
        team_id=own,
        unit_id=a1,
        opened_at=t(2, 14),
        closed_at=t(2, 15),
        outcome="agreement",
        recovered_fen=5000,
    )
    h = mw.headers

    r = await client.get(f"{API}/stats", params={"group": "team"}, headers=h["bureau_admin"])
    assert r.status_code == 200
    body = r.json()
    rows = [
        (
            x["label"],
            x["opened"],
            x["mediated"],
            x["success"],
            x["failed"],
            x["referred"],
            x["success_rate"],
            x["amount_recovered"],
        )
        for x in body["items"]
    ]
    assert rows == [
        ("平安大姐工作室", 4, 3, 2, 1, 0, 66.7, "1250.50"),
        ("老兵驿站", 2, 2, 1, 0, 1, 50.0, "3000.00"),
        ("贝贝童装调解小组", 1, 1, 1, 0, 0, 100.0, "50.00"),
    ]
    s = body["summary"]
    assert (s["opened"], s["mediated"], s["success"], s["success_rate"], s["amount_recovered"]) == (
        7,
        6,
        4,
        66.7,
        "4300.50",
    )

    r = await client.get(f"{API}/stats", params={"group": "month"}, headers=h["bureau_admin"])
    assert [(x["key"], x["opened"], x["mediated"], x["success"]) for x in r.json()["items"]] == [
        ("2026-01", 3, 2, 2),
        (
            "2026-02",
            4,
            3,
            1,
        ),  # opened: the 1 Feb local one, two of 老兵驿站, the advisors'; closed: failed, referred, advisors'
        ("2026-03", 0, 1, 1),
    ]
    # A period (inclusive local dates) and a station filter.
    r = await client.get(
        f"{API}/stats",
        params={"group": "station", "from": "2026-02-01", "to": "2026-02-28"},
        headers=h["bureau_admin"],
    )
    assert [(x["label"], x["opened"], x["mediated"]) for x in r.json()["items"]] == [
        ("织北派出所", 2, 2),
        ("织南派出所", 2, 1),
    ]
    r = await client.get(f"{API}/stats", params={"group": "team"}, headers=h["station_officer_b"])
    assert [x["label"] for x in r.json()["items"]] == ["老兵驿站"]
    r = await client.get(
        f"{API}/stats", params={"from": "2026-03-01", "to": "2026-01-01"}, headers=h["bureau_admin"]
    )
    assert r.status_code == 422

    # Monthly facts for February (UTC bounds of the local month).
    start = dt.datetime(2026, 1, 31, 16, tzinfo=dt.UTC)
    end = dt.datetime(2026, 2, 28, 16, tzinfo=dt.UTC)
    got = sorted(
        await facts.monthly_facts(db, start, end), key=lambda f: (f.metric, f.station_id or 0, f.unit_id or 0)
    )
    assert got == sorted(
        [
            Fact(a, a1, "mediation.cases", 2.0),  # the 1 Feb local one and the advisors'
            Fact(a, a1, "mediation.in_unit", 1.0),
            Fact(b, b1, "mediation.cases", 2.0),
            Fact(a, None, "mediation.failed", 1.0),
            Fact(b, b1, "mediation.referred", 1.0),
            Fact(a, a1, "mediation.success", 1.0),
            Fact(a, a1, "mediation.amount_recovered_yuan", 50.0),
            Fact(a, a1, "mediation.in_unit_success", 1.0),
        ],
        key=lambda f: (f.metric, f.station_id or 0, f.unit_id or 0),
    )


async def test_in_unit_means_the_cases_own_unit(db: AsyncSession) -> None:
    """A case of a2 settled by a1's advisors was not solved inside a2: it counts for neither."""
    mw = await make_med_world(db)
    w = mw.world
    a2 = w.units["a2"]
    await add_case(
        db,
        station_id=w.station_a,
        team_id=mw.teams["a1_advisors"],
        unit_id=a2,
        opened_at=t(3, 2),
        closed_at=t(3, 3),
        outcome="agreement",
    )
    got = await facts.monthly_facts(db, t(3, 1, 0), t(4, 1, 0))
    assert sorted((f.unit_id, f.metric, f.value) for f in got) == [
        (a2, "mediation.cases", 1.0),
        (a2, "mediation.success", 1.0),
    ]
