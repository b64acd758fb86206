"""发现 / 整改 / 逾期 on a hand-built case, per unit, station and month (Asia/Shanghai)."""

from __future__ import annotations

import datetime as dt

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from eqian.core.accounts import Role
from eqian.core.permissions import Principal, Scope, ScopeKind
from eqian.hazards import service
from tests.hazards.helpers import API_H, add_hazard, make_hz_world

UTC = dt.UTC


def t(month: int, day: int, hour: int = 4) -> dt.datetime:
    return dt.datetime(2026, month, day, hour, tzinfo=UTC)


async def test_stats_exact(client: httpx.AsyncClient, db: AsyncSession) -> None:
    hz = await make_hz_world(db)
    a1, a2, b1 = (hz.world.units[x] for x in ("a1", "a2", "b1"))
    # a1: found in Jan, verified in time in Jan.
    await add_hazard(db, a1, found_at=t(1, 10), severity="medium", status="verified", verified_at=t(1, 12))
    # a1: found 31 Jan 17:00 UTC = 1 Feb 01:00 in Zhili -> a February find; verified after its deadline.
    await add_hazard(
        db, a1, found_at=t(1, 31, 17), severity="critical", status="verified", verified_at=t(2, 5)
    )
    # a2: found in Feb, still open, deadline passed in Feb -> overdue in Feb.
    await add_hazard(db, a2, found_at=t(2, 10), severity="high")
    # b1: found in March, open, deadline still ahead of "now" -> not overdue.
    await add_hazard(db, b1, found_at=t(3, 28), severity="low")
    now = t(4, 1)
    bureau = Principal(
        user_id=1, username="b", display_name="b", role=Role.BUREAU_ADMIN, scope=Scope(ScopeKind.ALL)
    )

    by_month = await service.stats(db, bureau, "month", now=now)
    assert [(r.key, r.found, r.verified, r.overdue) for r in by_month] == [
        ("2026-01", 1, 1, 0),
        ("2026-02", 2, 1, 2),  # a1's critical (deadline 2 Feb, verified 5 Feb) and a2's high
        ("2026-03", 1, 0, 0),
    ]
    by_unit = await service.stats(db, bureau, "unit", now=now)
    assert [(r.key, r.found, r.verified, r.overdue) for r in by_unit] == [
        (str(a1), 2, 2, 1),
        (str(a2), 1, 0, 1),
        (str(b1), 1, 0, 0),
    ]
    by_station = await service.stats(db, bureau, "station", now=now)
    assert [(r.label, r.found, r.verified, r.overdue) for r in by_station] == [
        ("织北派出所", 3, 2, 2),
        ("织南派出所", 1, 0, 0),
    ]
    # Date bounds are inclusive local days: 1 Feb (local) picks up the 31 Jan 17:00 UTC find.
    feb = await service.stats(
        db, bureau, "station", since=dt.date(2026, 2, 1), until=dt.date(2026, 2, 28), now=now
    )
    assert [(r.found, r.verified, r.overdue) for r in feb] == [(2, 1, 2)]

    # Through the API, scoped: station B sees only its own.
    resp = await client.get(
        f"{API_H}/stats", params={"group": "unit"}, headers=hz.headers["station_officer_b"]
    )
    assert resp.status_code == 200
    assert [(r["key"], r["found"]) for r in resp.json()["items"]] == [(str(b1), 1)]
    bad = await client.get(f"{API_H}/stats", params={"group": "year"}, headers=hz.headers["bureau_admin"])
    assert bad.status_code == 422
    bad = await client.get(
        f"{API_H}/stats",
        params={"from": "2026-03-01", "to": "2026-02-01"},
        headers=hz.headers["bureau_admin"],
    )
    assert bad.status_code == 422
    bad = await client.get(f"{API_H}/stats", params={"from": "0001-01-01"}, headers=hz.headers["mediator"])
    assert bad.status_code == 422
