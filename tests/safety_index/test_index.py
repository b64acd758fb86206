"""Computing a month end to end: facts from real hazards plus injected facts for the domains not
built here, stored scores, ranks, change from last month, versions, the API's scope, notification."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import itertools
from typing import Any

import httpx
import pytest
import sqlalchemy
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine

from eqian.core import outbox, pacing
from eqian.core.db import make_engine, make_sessionmaker
from eqian.core.errors import Conflict, Forbidden
from eqian.core.facts import Fact
from eqian.core.permissions import SYSTEM, Principal
from eqian.hazards.models import Hazard
from eqian.notifications.models import Notification
from eqian.safety_index import compute, events, service
from eqian.safety_index.compute import load_model
from eqian.safety_index.models import SafetyIndexRun, SafetyIndexScore
from tests.factories import bearer
from tests.safety_index import fake_facts
from tests.safety_index.helpers import local, world_with_b1_security

NAMES = ("eqian.hazards.facts", fake_facts.NAME, "eqian.cockpit.facts")
API = "/api/v1/safety-index"


@pytest.fixture(autouse=True)
def _facts() -> None:
    fake_facts.FACTS.clear()


async def test_compute_store_rank_and_scope(db: AsyncSession, client: httpx.AsyncClient) -> None:
    w = await world_with_b1_security(db)
    a1, a2, a3, b1, b2 = (w.units[x] for x in ("a1", "a2", "a3", "b1", "b2"))
    sa, sb = w.station_a, w.station_b
    officer, security = Principal.of(w.users["station_officer"]), Principal.of(w.users["unit_security"])
    headers = {u: await bearer(db, w.users[u]) for u in ("bureau_admin", "station_officer", "unit_security")}
    # a1: two hazards found in Feb 2026 (local), one of them past its deadline and still open at month end.
    db.add_all(
        [
            Hazard(
                unit_id=a1,
                description="消防通道堵塞",
                severity="high",
                found_at=local(2026, 2, 3),
                deadline=local(2026, 2, 10),
                status="open",
            ),
            Hazard(
                unit_id=a1,
                description="电线私拉",
                severity="low",
                found_at=local(2026, 2, 20),
                deadline=local(2026, 3, 20),
                status="open",
            ),
            # Found 1 Mar 00:30 local (still February in UTC): a March hazard, not February's.
            Hazard(
                unit_id=a2,
                description="灭火器过期",
                severity="low",
                found_at=local(2026, 3, 1, 0),
                deadline=local(2026, 3, 30),
                status="open",
            ),
        ]
    )
    await db.commit()
    fake_facts.FACTS["2026-02"] = [
        Fact(sa, a2, "incidents.police", 1),
        Fact(sa, a2, "incidents.non_police", 2),
        Fact(sb, b1, "messaging.instructions", 4),
        Fact(sb, b1, "messaging.acknowledged_on_time", 2),
        Fact(None, None, "incidents.non_police", 9),  # a street incident: no unit, no deduction
    ]
    fake_facts.FACTS["2026-01"] = [Fact(sa, a1, "incidents.police", 1)]

    jan = await service.compute_month(db, SYSTEM, "2026-01", names=NAMES)
    feb = await service.compute_month(db, SYSTEM, "2026-02", names=NAMES)
    assert (jan.units, feb.units, feb.config_version) == (5, 5, load_model().version)

    rows = {
        r.unit_id: r
        for r in await db.scalars(select(SafetyIndexScore).where(SafetyIndexScore.month == "2026-02"))
    }
    # a1: found 2 (2 points) + 1 overdue open (4) = 6 off; a2: 3 + 2 = 5 off; b1: half its
    # instructions acknowledged on time = 5 off; a3, b2: nothing.
    assert {u: r.score for u, r in rows.items()} == {a1: 94.0, a2: 95.0, a3: 100.0, b1: 95.0, b2: 100.0}
    # Stored as figures (code, points, the component's metric values), explained when read.
    assert rows[a1].deductions == [["hazards", 6.0, [2.0, 1.0]]]
    assert rows[a1].advice == rows[a3].advice == rows[a3].deductions == []
    # Ranks within station (A: a3 100, a2 95, a1 94) and category (garment: a1 94, b1 95).
    assert [(rows[u].rank_station, rows[u].station_units) for u in (a3, a2, a1)] == [(1, 3), (2, 3), (3, 3)]
    assert (rows[b1].rank_category, rows[a1].rank_category, rows[a1].category_units) == (1, 2, 2)
    # Change from January (a1 lost 3 points for its police incident then: 97 -> 94).
    assert (rows[a1].change, rows[b2].change) == (-3.0, 0.0)
    assert all(r.grade == "excellent" for r in rows.values())

    # Re-running with the same version replaces the month (no duplicates); another version must be explicit.
    again = await service.compute_month(db, SYSTEM, "2026-02", names=NAMES)
    assert again.replaced_version == feb.config_version
    assert await db.scalar(select(func.count()).select_from(SafetyIndexScore)) == 10
    other = dataclasses.replace(load_model(), version="2099.9")
    with pytest.raises(Conflict):
        await service.compute_month(db, SYSTEM, "2026-02", names=NAMES, model=other)
    assert (await db.get(SafetyIndexRun, "2026-02")).config_version == feb.config_version  # type: ignore[union-attr]
    await service.compute_month(db, SYSTEM, "2026-02", names=NAMES, model=other, replace=True)
    db.expire_all()
    assert set(
        await db.scalars(select(SafetyIndexScore.config_version).where(SafetyIndexScore.month == "2026-02"))
    ) == {"2099.9"}
    with pytest.raises(Forbidden):
        await service.compute_month(db, officer, "2026-02", names=NAMES)

    # The API: scoped lists, filters, history; 404 outside the scope; bad input is a 422.
    r = await client.get(API, params={"month": "2026-02"}, headers=headers["bureau_admin"])
    assert r.status_code == 200
    body = r.json()
    assert body["total"] == 5
    assert body["month"] == "2026-02"
    assert [i["unit_id"] for i in body["items"]][:1] == [a1]  # lowest score first
    r = await client.get(
        API, params={"month": "2026-02", "order": "desc"}, headers=headers["station_officer"]
    )
    assert {i["unit_id"] for i in r.json()["items"]} == {a1, a2, a3}
    r = await client.get(API, headers=headers["unit_security"])  # default: the latest month
    (own,) = r.json()["items"]
    assert (own["unit_id"], own["score"], own["grade_label"], own["month"]) == (a1, 94.0, "优", "2026-02")
    assert own["deductions"] == [
        {
            "code": "hazards",
            "name": "安全隐患",
            "sign": "deduction",
            "points": 6.0,
            "reason": "本月新发现隐患 2 项，逾期未整改 1 项（逾期每项扣 4 分）",
            "metrics": ["hazards.found", "hazards.overdue_open"],
            "link": f"/hazards?unit_id={a1}&month=2026-02",
        }
    ]
    assert own["advice"] == [load_model().by_code["hazards"].advice]
    r = await client.get(
        API, params={"category": "garment", "month": "2026-02"}, headers=headers["bureau_admin"]
    )
    assert {i["unit_id"] for i in r.json()["items"]} == {a1, b1}
    r = await client.get(API, params={"grade": "poor"}, headers=headers["bureau_admin"])
    assert r.json()["total"] == 0
    for bad in ({"month": "2026-13"}, {"grade": "best"}, {"order": "up"}, {"station_id": "0"}):
        assert (await client.get(API, params=bad, headers=headers["bureau_admin"])).status_code == 422
    r = await client.get(f"/api/v1/units/{a1}/safety-index", headers=headers["unit_security"])
    assert [(i["month"], i["score"]) for i in r.json()["items"]] == [("2026-01", 97.0), ("2026-02", 94.0)]
    assert (
        await client.get(f"/api/v1/units/{b1}/safety-index", headers=headers["unit_security"])
    ).status_code == 404
    assert (
        await client.get(f"/api/v1/units/{b1}/safety-index", headers=headers["station_officer"])
    ).status_code == 404
    r = await client.post(f"{API}/compute", json={"month": "2026-02"}, headers=headers["station_officer"])
    assert r.status_code == 403
    r = await client.post(
        f"{API}/compute", json={"month": "2026-02", "extra": 1}, headers=headers["bureau_admin"]
    )
    assert r.status_code == 422
    r = await client.post(f"{API}/compute", json={"month": "2026-02"}, headers=headers["bureau_admin"])
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "version_mismatch"
    r = await client.post(
        f"{API}/compute", json={"month": "2026-02", "replace": True}, headers=headers["bureau_admin"]
    )
    assert r.status_code == 200
    assert r.json()["replaced_version"] == "2099.9"

    # Peers: the scores of same-category units in the station, without names.
    assert await service.peer_scores(db, security, a1, "2026-02") == [94.0]
    assert await service.peer_scores(db, security, b1, "2026-02") == []


async def test_computed_month_notifies_unit_security(db: AsyncSession) -> None:
    w = await world_with_b1_security(db)
    await service.compute_month(db, SYSTEM, "2026-02", names=(fake_facts.NAME,))
    topic = service.COMPUTED_TOPIC
    event = await db.scalar(select(outbox.OutboxEvent).where(outbox.OutboxEvent.topic == topic))
    assert event is not None
    assert event.payload["month"] == "2026-02"
    assert event.payload["units"] == 5
    for _ in range(2):  # a repeated delivery adds nothing
        await events.on_computed(db, event)
        await db.commit()
    rows = list(await db.scalars(select(Notification).where(Notification.kind == topic)))
    assert sorted(n.user_id for n in rows) == sorted(
        [w.users["unit_security"].id, w.users["unit_security_b1"].id]
    )
    assert rows[0].title == "2026年2月企业平安指数已发布"
    assert rows[0].link == "/safety-index?month=2026-02"

    # A re-run with the same model (late data) tells nobody again; a replacing model does.
    for model, replace, told in (
        (None, False, False),
        (dataclasses.replace(load_model(), version="v-next"), True, True),
    ):
        await service.compute_month(
            db, SYSTEM, "2026-02", names=(fake_facts.NAME,), model=model, replace=replace
        )
        again = await db.scalar(
            select(outbox.OutboxEvent)
            .where(outbox.OutboxEvent.topic == topic)
            .order_by(outbox.OutboxEvent.id.desc())
        )
        assert again is not None
        assert again.id != event.id
        assert again.payload["notify"] is told
        before = await db.scalar(select(func.count()).select_from(Notification))
        await events.on_computed(db, again)
        await db.commit()
        added = (await db.scalar(select(func.count()).select_from(Notification)) or 0) - (before or 0)
        assert added == (2 if told else 0)


async def test_only_the_index_transaction_skips_waiting_for_the_disk(
    db: AsyncSession, database_url: str
) -> None:
    """On PostgreSQL the month's commit is asynchronous (it can be recomputed); the setting must end
    with that transaction, or the next user of the pooled connection (an incident) would be too.
    SQLite is sent nothing of the kind."""
    await world_with_b1_security(db)
    pg = database_url.startswith("postgresql")
    engine = (
        create_async_engine(database_url, pool_size=1, max_overflow=0) if pg else make_engine(database_url)
    )
    statements: list[str] = []
    sqlalchemy.event.listen(
        engine.sync_engine, "before_cursor_execute", lambda *a: statements.append(a[2]), named=False
    )
    try:
        async with make_sessionmaker(engine)() as session:
            await service.compute_month(session, SYSTEM, "2026-02", names=(fake_facts.NAME,))
        if pg:
            assert "SET LOCAL synchronous_commit TO OFF" in statements
            async with engine.connect() as conn:  # the same, only connection of this engine
                assert await conn.scalar(sqlalchemy.text("SHOW synchronous_commit")) == "on"
        else:
            assert not [st for st in statements if "synchronous_commit" in st]
    finally:
        await engine.dispose()
    stored = select(func.count()).select_from(SafetyIndexScore).where(SafetyIndexScore.month == "2026-02")
    assert await db.scalar(stored) == 5


async def test_the_job_is_paced_on_postgresql_only(
    db: AsyncSession, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pausing inside SQLite's write transaction would hold the whole database from every writer."""
    await world_with_b1_security(db)
    made: list[tuple[float, bool]] = []

    class Recording(service.Pacer):
        def __init__(self, ratio: float = 0.0, *, busy: pacing.Busy | None = None) -> None:
            super().__init__(ratio, busy=busy)
            made.append((self.ratio, busy is not None))

    monkeypatch.setattr(service, "Pacer", Recording)
    await service.compute_month(db, SYSTEM, "2026-02", names=(fake_facts.NAME,), pace=service.DEFAULT_PACE)
    # On PostgreSQL it pauses only while other clients are busy (core.pacing.database_busy).
    assert made == [(service.DEFAULT_PACE, True) if database_url.startswith("postgresql") else (0.0, False)]
    assert service.DEFAULT_PACE > 0


async def test_the_job_gives_way_only_while_another_client_is_busy(
    db: AsyncSession, engine: AsyncEngine
) -> None:
    """At night nobody else is at work and the job runs at full speed; beside a request in a
    transaction it pauses, and says for how long."""
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite's job is never paced (test_the_job_is_paced_on_postgresql_only)")
    await world_with_b1_security(db)
    quiet = await service.compute_month(db, SYSTEM, "2026-02", names=(fake_facts.NAME,), pace=3.0)
    assert quiet.paused == 0.0
    async with engine.connect() as request:
        await request.execute(sqlalchemy.text("SELECT 1"))  # a request between two statements
        busy = await service.compute_month(
            db, SYSTEM, "2026-02", names=(fake_facts.NAME,), replace=True, pace=3.0
        )
    assert busy.paused > 0.0
    assert busy.units == quiet.units


async def test_scoring_lets_the_event_loop_serve_others(
    db: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The monthly job runs inside a server worker: requests on that worker must get turns while
    a city's units are scored, not wait for the whole month."""
    await world_with_b1_security(db)
    monkeypatch.setattr(service, "SCORE_SLICE", 1)
    turns = 0
    done = asyncio.Event()

    async def another_request() -> None:
        nonlocal turns
        while not done.is_set():
            turns += 1
            await asyncio.sleep(0)

    seen: list[int] = []  # the other task's turns when each slice (here: each unit) is scored
    real_score = compute.score_columns

    def score_and_look(*args: Any, **kwargs: Any) -> Any:
        seen.append(turns)
        return real_score(*args, **kwargs)

    monkeypatch.setattr(compute, "score_columns", score_and_look)
    other = asyncio.create_task(another_request())
    result = await service.compute_month(db, SYSTEM, "2026-02", names=(fake_facts.NAME,))
    done.set()
    await other
    assert len(seen) == result.units == 5
    assert all(later > earlier for earlier, later in itertools.pairwise(seen)), seen


async def test_monthly_job_computes_last_month_once(db: AsyncSession) -> None:
    from eqian.safety_index.jobs import MONTHLY_JOB

    await world_with_b1_security(db)
    # 1 Mar 2026 00:30 in Zhili is still 28 Feb in UTC: the month just over is February.
    now = local(2026, 3, 1, 0) + dt.timedelta(minutes=30)
    assert await MONTHLY_JOB.run(db, now) == 5
    assert await db.get(SafetyIndexRun, "2026-02") is not None
    assert await MONTHLY_JOB.run(db, now) == 0  # already there: nothing recomputed, nothing re-sent
    events_sent = await db.scalar(
        select(func.count())
        .select_from(outbox.OutboxEvent)
        .where(outbox.OutboxEvent.topic == service.COMPUTED_TOPIC)
    )
    assert events_sent == 1
