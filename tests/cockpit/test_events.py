"""Rollups stay current as events land: an event marks its month dirty, the refresh job recomputes
it, a refresh racing a newer event leaves the month dirty; new incidents reach the live feed."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
import pytest
from sqlalchemy import event as sa_event
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from eqian.cockpit import events, jobs, rollups
from eqian.cockpit.models import CockpitMonth
from eqian.core import months, outbox, pubsub
from eqian.core.audit import AuditLog
from tests.cockpit.helpers import API, add_raw, at, make_cockpit_world

pytestmark = pytest.mark.usefixtures("raw_table")


async def incidents_total(client: httpx.AsyncClient, headers: dict[str, str]) -> tuple[float, list[str]]:
    body = (await client.get(f"{API}/summary", params={"month": "2026-03"}, headers=headers)).json()
    value = next(k["value"] for k in body["kpis"] if k["code"] == "incidents_total")
    return value, body["freshness"]["pending"]


async def test_event_marks_dirty_and_job_refreshes(
    client: httpx.AsyncClient, db: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    events.register()
    cw = await make_cockpit_world(db)
    w = cw.hz.world
    h = cw.headers
    await add_raw(db, at(2026, 3, 2), "incidents.total", station_id=w.station_a, unit_id=cw.unit("a1"))
    await rollups.rebuild(db, "2025-02", "2026-03")
    assert await incidents_total(client, h["bureau_admin"]) == (1, [])

    # A new incident lands: its raw row and its event commit together.
    await add_raw(db, at(2026, 3, 20), "incidents.total", station_id=w.station_a, unit_id=cw.unit("a2"))
    payload: dict[str, Any] = {
        "incident_id": 77,
        "station_id": w.station_a,
        "unit_id": cw.unit("a2"),
        "category": "labor",
        "police": False,
        "at": "2026-03-20T04:00:00+00:00",
        "summary": "工人讨薪",
    }
    outbox.emit(db, "incidents.reported", payload)
    await db.commit()
    received: list[dict[str, Any]] = []
    sub = pubsub.get_broker().subscribe("feed", lambda topic, message: received.append(message))
    try:
        await outbox.dispatch_pending(sessionmaker)
    finally:
        sub.close()
    assert [m["link"] for m in received] == ["/incidents/77"]
    assert received[0]["kind"] == "incident"
    assert received[0]["station_id"] == w.station_a

    # Until the job runs, the cockpit answers from the rollups and says the month is pending.
    assert await incidents_total(client, h["bureau_admin"]) == (1, ["2026-03"])
    async with sessionmaker() as session:
        assert await jobs.REFRESH_JOB.run(session, dt.datetime.now(dt.UTC)) == 1
    assert await incidents_total(client, h["bureau_admin"]) == (2, [])
    async with sessionmaker() as session:  # nothing dirty: nothing to do
        assert await jobs.REFRESH_JOB.run(session, dt.datetime.now(dt.UTC)) == 0

    # The live feed's backlog, scoped by station.
    feed = (await client.get(f"{API}/feed", headers=h["station_officer"])).json()["items"]
    assert [i["link"] for i in feed] == ["/incidents/77"]
    assert "工人讨薪" in feed[0]["title"]
    assert (await client.get(f"{API}/feed", headers=h["station_officer_b"])).json()["items"] == []
    assert (await client.get(f"{API}/feed", headers=h["unit_security"])).status_code == 403


async def test_refresh_racing_a_newer_event_stays_dirty(db: AsyncSession) -> None:
    await make_cockpit_world(db)
    t0 = dt.datetime(2026, 3, 20, 4, tzinfo=dt.UTC)
    await rollups.mark_dirty(db, ["2026-03"], now=t0 + dt.timedelta(seconds=5))
    await db.commit()
    await rollups.refresh_month(db, "2026-03", now=t0)  # started before the newer mark
    assert await db.scalar(select(CockpitMonth.dirty).where(CockpitMonth.month == "2026-03")) is True
    await rollups.refresh_month(db, "2026-03", now=t0 + dt.timedelta(seconds=6))
    assert await db.scalar(select(CockpitMonth.dirty).where(CockpitMonth.month == "2026-03")) is False
    # The hourly sweep marks this month and the thirteen before it.
    assert await rollups.sweep(db, t0) == 14
    assert await rollups.dirty_months(db) == [months.shift("2026-03", -i) for i in range(14)]


async def test_a_month_refreshed_meanwhile_is_not_recomputed(db: AsyncSession) -> None:
    """Both workers run the refresh job: the one that waited for the month's lock while the other
    refreshed it finds the month clean and leaves the rows alone."""
    cw = await make_cockpit_world(db)
    await add_raw(
        db, at(2026, 3, 2), "incidents.total", station_id=cw.hz.world.station_a, unit_id=cw.unit("a1")
    )
    t0 = dt.datetime(2026, 3, 20, 4, tzinfo=dt.UTC)
    await rollups.mark_dirty(db, ["2026-03"], now=t0)
    await db.commit()
    written = await rollups.refresh_month(db, "2026-03", now=t0 + dt.timedelta(seconds=1), only_if_dirty=True)
    assert written > 0
    computed = await db.scalar(select(CockpitMonth.computed_at).where(CockpitMonth.month == "2026-03"))
    assert await rollups.refresh_month(db, "2026-03", only_if_dirty=True) == 0
    assert (
        await db.scalar(select(CockpitMonth.computed_at).where(CockpitMonth.month == "2026-03")) == computed
    )
    assert await rollups.refresh_month(db, "2026-03") == written  # asked for explicitly: recomputed


async def test_refresh_now_is_for_the_bureau_and_audited(client: httpx.AsyncClient, db: AsyncSession) -> None:
    cw = await make_cockpit_world(db)
    h = cw.headers
    await add_raw(
        db, at(2026, 3, 2), "incidents.total", station_id=cw.hz.world.station_a, unit_id=cw.unit("a1")
    )
    never = ["2025-03", "2026-02", "2026-03"]  # the month, a year before, the month before
    assert await incidents_total(client, h["bureau_admin"]) == (0, never)
    body = {"months": ["2026-03"]}
    assert (await client.post(f"{API}/refresh", json=body, headers=h["station_officer"])).status_code == 403
    assert (
        await client.post(f"{API}/refresh", json={"months": ["2026-3"]}, headers=h["bureau_admin"])
    ).status_code == 422
    assert (
        await client.post(f"{API}/refresh", json={"months": []}, headers=h["bureau_admin"])
    ).status_code == 422
    r = await client.post(f"{API}/refresh", json=body, headers=h["bureau_admin"])
    assert r.status_code == 200
    assert r.json()["items"][0]["month"] == "2026-03"
    assert await incidents_total(client, h["bureau_admin"]) == (1, never[:2])
    actions = await db.scalars(select(AuditLog.action).where(AuditLog.action == "cockpit.rollups.refresh"))
    assert list(actions) == ["cockpit.rollups.refresh"]


async def test_a_month_is_marked_once_per_transaction_and_again_in_the_next(
    db: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """The outbox marks hundreds of incidents of one month in one transaction: one upsert each
    month; a transaction after the refresh cleared the month marks it again."""
    await make_cockpit_world(db)
    upserts: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO COCKPIT_MONTHS"):
            upserts.append(statement)

    engine = sessionmaker.kw["bind"].sync_engine
    sa_event.listen(engine, "before_cursor_execute", count)
    try:
        async with sessionmaker() as s:
            for _ in range(3):
                await rollups.mark_dirty(s, ["2026-03"])
            await rollups.mark_dirty(s, ["2026-03", "2026-02"])
            await s.commit()
            assert len(upserts) == 2
            await rollups.refresh_month(db, "2026-03")
            assert await db.scalar(select(CockpitMonth.dirty).where(CockpitMonth.month == "2026-03")) is False
            upserts.clear()
            await rollups.mark_dirty(s, ["2026-03"])
            await s.commit()
            assert len(upserts) == 1
    finally:
        sa_event.remove(engine, "before_cursor_execute", count)
    assert await db.scalar(select(CockpitMonth.dirty).where(CockpitMonth.month == "2026-03")) is True
