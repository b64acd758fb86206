"""The outbox delivers every committed event exactly once into the database, and nothing else."""

from __future__ import annotations

import pytest
from sqlalchemy import func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from eqian.core import outbox
from eqian.core.accounts import Role, User
from eqian.core.db import table_of, utcnow
from eqian.environment import events as environment_events
from eqian.environment.models import EnvAlert
from eqian.notifications.models import Notification
from eqian.organizations.models import JointZone, Unit
from tests.factories import World, make_world

TOPIC = "test.ping"


@pytest.fixture
async def world(db: AsyncSession) -> World:
    return await make_world(db)


@pytest.fixture
def recorded() -> list[int]:
    seen: list[int] = []

    async def handler(session: AsyncSession, event: outbox.OutboxEvent) -> None:
        if event.payload.get("fail"):
            raise RuntimeError("handler failed")
        seen.append(event.payload["n"])

    outbox._handlers[TOPIC] = [handler]
    yield seen
    outbox._handlers.pop(TOPIC, None)


async def test_only_committed_events_are_delivered_once(
    db: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession], recorded: list[int]
) -> None:
    async with sessionmaker() as s:
        outbox.emit(s, TOPIC, {"n": 1})
        await s.commit()
    async with sessionmaker() as s:
        outbox.emit(s, TOPIC, {"n": 2})
        await s.rollback()  # the change failed: its event must never leave
    assert await outbox.dispatch_pending(sessionmaker) == 1
    assert await outbox.dispatch_pending(sessionmaker) == 0
    assert recorded == [1]
    assert await db.scalar(select(func.count()).select_from(outbox.OutboxEvent)) == 1


async def test_a_failing_handler_is_retried_later_and_does_not_block_others(
    db: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession], recorded: list[int]
) -> None:
    async with sessionmaker() as s:
        outbox.emit(s, TOPIC, {"n": 1, "fail": True})
        outbox.emit(s, TOPIC, {"n": 2})
        await s.commit()
    assert await outbox.dispatch_pending(sessionmaker) == 1
    assert recorded == [2]
    failed = await db.scalar(select(outbox.OutboxEvent).where(outbox.OutboxEvent.dispatched_at.is_(None)))
    assert failed is not None
    assert (failed.attempts, failed.last_error) == (1, "handler failed")
    assert failed.available_at > failed.created_at  # backed off, not retried in a hot loop
    assert await outbox.dispatch_pending(sessionmaker) == 0


BATCH_TOPIC = "test.batched"


async def test_batchable_events_share_a_transaction_and_a_failure_falls_back_to_one_each(
    db: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """Events whose handlers are all batchable are handled in one transaction; when one of them
    fails the batch rolls back (its writes too) and each event is tried alone, so the others get
    through once and only the failing one is retried later."""
    sessions: list[int] = []
    written: list[int] = []

    async def handler(session: AsyncSession, event: outbox.OutboxEvent) -> None:
        sessions.append(id(session))
        # a database write of the handler's own, which must commit or roll back with the event
        outbox.emit(session, "test.written", {"n": event.payload["n"]})
        if event.payload.get("fail"):
            raise RuntimeError("handler failed")
        written.append(event.payload["n"])

    outbox.subscribe(BATCH_TOPIC, handler, batchable=True)
    try:
        async with sessionmaker() as s:
            for n in range(5):
                outbox.emit(s, BATCH_TOPIC, {"n": n})
            await s.commit()
        assert await outbox.dispatch_pending(sessionmaker) == 5
        assert written == [0, 1, 2, 3, 4]
        assert len(set(sessions)) == 1  # one session: one transaction for the five
        assert await outbox.dispatch_pending(sessionmaker) == 5  # the handler's own events

        sessions.clear()
        written.clear()
        async with sessionmaker() as s:
            for n in range(5, 10):
                outbox.emit(s, BATCH_TOPIC, {"n": n, "fail": n == 7})
            await s.commit()
        assert await outbox.dispatch_pending(sessionmaker) == 4
        # the batch ran 5, 6, 7 and rolled back; then each alone
        assert written == [5, 6, 5, 6, 8, 9]
        by_topic = dict(
            (
                await db.execute(
                    select(outbox.OutboxEvent.topic, func.count())
                    .where(outbox.OutboxEvent.topic == "test.written")
                    .group_by(outbox.OutboxEvent.topic)
                )
            ).all()
        )
        assert by_topic == {"test.written": 9}  # 0–4, 5, 6, 8, 9: nothing from the rolled-back batch
        failed = await db.scalar(
            select(outbox.OutboxEvent).where(
                outbox.OutboxEvent.topic == BATCH_TOPIC, outbox.OutboxEvent.dispatched_at.is_(None)
            )
        )
        assert failed is not None
        assert (failed.payload["n"], failed.attempts, failed.last_error) == (7, 1, "handler failed")
    finally:
        outbox._handlers.pop(BATCH_TOPIC, None)
        outbox._handlers.pop("test.written", None)


async def test_environment_alert_reaches_bureau_station_and_partner_once(
    db: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession], world: World
) -> None:
    environment_events.register()
    zone = JointZone(
        code="qiaolou",
        name="乔溇核心区",
        partner_agency="吴江分局",
        station_id=world.station_a,
        polygon=[[30.9, 120.2], [30.9, 120.3], [30.8, 120.3], [30.8, 120.2]],
    )
    db.add(zone)
    await db.flush()
    unit = await db.get(Unit, world.units["a1"])
    assert unit is not None
    unit.joint_zone_id = zone.id
    partner = User(
        username="partner",
        display_name="吴江民警",
        password_hash="x",
        role=Role.PARTNER_OFFICER.value,
        zone_id=zone.id,
    )
    db.add(partner)
    await db.commit()
    async with sessionmaker() as s:
        alert = EnvAlert(
            fingerprint="unaccounted_ash:1:2026-10",
            unit_id=unit.id,
            kind="unaccounted_ash",
            severity="red",
            period="2026-10",
            message="铝灰去向不明 41.2 吨",
            evidence={},
        )
        s.add(alert)
        await s.flush()
        event = outbox.emit(
            s,
            environment_events.ALERT_TOPIC,
            {"alert_id": alert.id, "unit_id": unit.id, "station_id": world.station_a, "zone_id": zone.id},
        )
        await s.commit()
        event_id = event.id
    assert await outbox.dispatch_pending(sessionmaker) == 1
    rows = (
        await db.execute(
            select(User.username, Notification.body, Notification.link)
            .join(Notification, Notification.user_id == User.id)
            .order_by(User.username)
        )
    ).all()
    assert [r[0] for r in rows] == ["bureau_admin", "partner", "station_officer"]
    assert {r[1] for r in rows} == {"铝灰去向不明 41.2 吨"}
    assert rows[0][2] == f"/environment/smelters/{unit.id}?period=2026-10"
    # A redelivery (a crash after the handler ran but before the event was marked) adds nothing.
    async with sessionmaker() as s:
        ev = await s.get(outbox.OutboxEvent, event_id)
        assert ev is not None
        await environment_events.on_alert(s, ev)
        await s.commit()
    assert await db.scalar(select(func.count()).select_from(Notification)) == 3


async def test_a_batch_is_stamped_at_one_moment_and_what_its_handlers_emit_waits_its_turn(
    db: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    async def handler(session: AsyncSession, event: outbox.OutboxEvent) -> None:
        outbox.emit(session, "test.follow_up", {"n": event.payload["n"]})

    outbox.subscribe(BATCH_TOPIC, handler, batchable=True)
    try:
        async with sessionmaker() as s:
            for n in range(3):
                outbox.emit(s, BATCH_TOPIC, {"n": n})
            await s.commit()
        assert await outbox.dispatch_pending(sessionmaker, limit=3) == 3
        rows = (
            await db.execute(
                select(outbox.OutboxEvent.topic, outbox.OutboxEvent.dispatched_at).order_by("id")
            )
        ).all()
        assert [topic for topic, _ in rows] == [BATCH_TOPIC] * 3 + ["test.follow_up"] * 3
        stamps = {at for topic, at in rows if topic == BATCH_TOPIC}
        assert len(stamps) == 1  # the batch went out together
        assert None not in stamps
        assert {at for topic, at in rows if topic != BATCH_TOPIC} == {None}  # not yet dispatched
    finally:
        outbox._handlers.pop(BATCH_TOPIC, None)


async def test_the_dispatcher_finds_a_backlog_without_reading_the_history(
    db: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession], recorded: list[int]
) -> None:
    """Dispatched events stay in the table for good; the question the dispatcher asks every poll
    must read the undispatched ones only, whatever lies behind them (migration 0011)."""
    now = utcnow()
    table = table_of(outbox.OutboxEvent)
    history = [
        {"topic": TOPIC, "payload": {"n": -1}, "created_at": now, "available_at": now, "attempts": 0,
         "dispatched_at": now}
        for _ in range(5_000)
    ]  # fmt: skip
    await db.execute(insert(table), history)
    for n in range(3):
        outbox.emit(db, TOPIC, {"n": n})
    await db.commit()
    pg = db.get_bind().dialect.name == "postgresql"
    if pg:  # (on SQLite, ANALYZE would leave sqlite_stat1 behind for the tests after this one)
        await db.execute(text("ANALYZE outbox_events"))
    query = outbox.due_query(utcnow(), 100).compile(db.get_bind(), compile_kwargs={"literal_binds": True})
    plan = "\n".join(
        str(row[-1])
        for row in await db.execute(text(("EXPLAIN " if pg else "EXPLAIN QUERY PLAN ") + str(query)))
    )
    assert "ix_outbox_events_due" in plan, plan
    assert await outbox.dispatch_pending(sessionmaker) == 3
    assert recorded == [0, 1, 2]
