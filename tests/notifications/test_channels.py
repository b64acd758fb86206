"""DingTalk and SMS: signed requests, errcode failures, delivery through the outbox that survives a
crash between commit and send, retries with back-off and never sends the same thing twice."""

from __future__ import annotations

import datetime as dt
import socket
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from eqian.core import outbox
from eqian.core.accounts import Role, User
from eqian.core.db import make_engine, make_sessionmaker, utcnow
from eqian.notifications import channels, service
from eqian.notifications import events as notification_events
from eqian.notifications.models import Notification, NotificationDelivery
from eqian.organizations.models import Contact
from tests.factories import World, bearer, make_world
from tests.notifications.robot import RobotServer

SECRET = "SEC0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd"


class FlakySms(channels.LogSmsGateway):
    """The logging gateway, except that the first message to each number in ``fail_once`` fails."""

    def __init__(self, fail_once: set[str]) -> None:
        super().__init__()
        self.fail_once = set(fail_once)

    async def send(self, phone: str, text: str) -> None:
        if phone in self.fail_once:
            self.fail_once.discard(phone)
            raise channels.DeliveryFailed("gateway busy")
        await super().send(phone, text)


@pytest.fixture
def robot() -> Iterator[RobotServer]:
    with RobotServer(SECRET) as server:
        yield server


@pytest.fixture(autouse=True)
def _reset_channels() -> Iterator[None]:
    notification_events.register()
    yield
    channels.use(None)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_dingtalk_robot_signs_like_dingtalk_and_treats_errcode_as_failure(robot: RobotServer) -> None:
    bot = channels.DingTalkRobot(robot.url, SECRET)
    await bot.send_text("【e企安·365】春季安全检查", at_mobiles=["13800000001"])
    await bot.send_markdown("指令", "### 做好居住证登记")
    assert robot.accepted[0] == {
        "msgtype": "text",
        "text": {"content": "【e企安·365】春季安全检查 @13800000001"},
        "at": {"atMobiles": ["13800000001"], "isAtAll": False},
    }
    assert robot.accepted[1]["markdown"] == {"title": "指令", "text": "### 做好居住证登记"}
    url = channels.dingtalk_signed_url(robot.url, SECRET, 1700000000123)
    assert url.startswith(robot.url + "&timestamp=1700000000123&sign=")
    assert url.endswith("%3D")  # Base64 padding, URL-encoded

    failures = {
        "wrong secret": channels.DingTalkRobot(robot.url, "another-secret"),
        "unsigned": channels.DingTalkRobot(robot.url, None),
        "unreachable": channels.DingTalkRobot(
            f"http://127.0.0.1:{_closed_port()}/robot/send?access_token=x", SECRET
        ),
    }
    for name, failing in failures.items():
        with pytest.raises(channels.DeliveryFailed):
            await failing.send_text(name)
    robot.fail_with = 130101  # rate limited: HTTP 200 but not sent
    with pytest.raises(channels.DeliveryFailed, match="130101"):
        await bot.send_text("太快了")
    robot.fail_with, robot.http_status = None, 502
    with pytest.raises(channels.DeliveryFailed, match="502"):
        await bot.send_text("网关错误")
    assert robot.rejected == ["sign", "unsigned", "errcode 130101", "http 502"]
    assert len(robot.accepted) == 2


async def _phones_world(db: AsyncSession) -> tuple[World, list[int]]:
    """a1's staff reach its security head (not its advisor); b1 has only an advisor; officers: none."""
    world = await make_world(db)
    a1, b1 = world.units["a1"], world.units["b1"]
    await db.execute(update(Contact).where(Contact.unit_id == a1).values(phone="13800000001"))
    await db.execute(
        update(Contact).where(Contact.unit_id == b1).values(phone="13900000003", role="safety_advisor")
    )
    db.add(Contact(unit_id=a1, name="李顾问", role="safety_advisor", phone="13800000002"))
    b1_staff = User(
        username="b1_security",
        display_name="b1 安保",
        password_hash="x",
        role=Role.UNIT_SECURITY.value,
        unit_id=b1,
    )
    db.add(b1_staff)
    await db.flush()
    users = [world.users["unit_security"].id, b1_staff.id, world.users["station_officer"].id]
    return world, users


async def test_external_notifications_survive_a_crash_retry_with_backoff_and_never_repeat(
    db: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    database_url: str,
    robot: RobotServer,
    client: httpx.AsyncClient,
) -> None:
    world, users = await _phones_world(db)
    sms = FlakySms(fail_once={"13900000003"})
    channels.use(channels.Channels(sms=sms, dingtalk=channels.DingTalkRobot(robot.url, SECRET)))
    robot.fail_with = 130101

    async with sessionmaker() as s:
        added = await service.notify(
            s,
            user_ids=users,
            event_id=None,
            kind="messaging.instruction_overdue",
            title="指令逾期未确认",
            body="请于今日 18:00 前确认：做好居住证登记",
            link="/messaging/instructions/7",
            channels=("app", "dingtalk", "sms"),
        )
        await s.commit()
    assert added == 3
    assert await db.scalar(select(func.count()).select_from(Notification)) == 3
    # Committed and queued, nothing sent: a process killed now has lost nothing.
    assert (robot.accepted, list(sms.sent)) == ([], [])
    assert await db.scalar(select(func.count()).select_from(outbox.OutboxEvent)) == 3  # robot + 2 numbers

    # A fresh process (new engine, new session factory) picks the events up.
    engine = make_engine(database_url)
    try:
        fresh = make_sessionmaker(engine)
        assert await outbox.dispatch_pending(fresh) == 1  # a1's head; the robot and b1's gateway failed
        assert [p for p, _ in sms.sent] == ["13800000001"]
        assert robot.rejected == ["errcode 130101"]
        pending = list(
            await db.scalars(select(outbox.OutboxEvent).where(outbox.OutboxEvent.dispatched_at.is_(None)))
        )
        assert sorted(e.payload["recipient"] for e in pending) == ["13900000003", "robot"]
        assert all(e.attempts == 1 and e.available_at > utcnow() for e in pending)
        assert await outbox.dispatch_pending(fresh) == 0  # backing off, not hammering the gateway

        # The command centre sees what went out and what is being retried, numbers masked.
        admin = await bearer(db, world.users["bureau_admin"])
        r = await client.get("/api/v1/notifications/deliveries", params={"status": "pending"}, headers=admin)
        assert r.status_code == 200
        assert r.json()["total"] == 2
        assert sorted((d["channel"], d["recipient"], d["attempts"]) for d in r.json()["items"]) == [
            ("dingtalk", "robot", 1),
            ("sms", "139****0003", 1),
        ]
        assert {d["last_error"] for d in r.json()["items"]} == {
            "dingtalk errcode 130101: send too fast, exceed 20 times per minute",
            "gateway busy",
        }
        r = await client.get("/api/v1/notifications/deliveries", headers=admin)
        assert [(d["recipient"], d["title"], d["status"]) for d in r.json()["items"]] == [
            ("138****0001", "指令逾期未确认", "sent")
        ]
        officer = await bearer(db, world.users["station_officer"])
        assert (await client.get("/api/v1/notifications/deliveries", headers=officer)).status_code == 403
        r = await client.get("/api/v1/notifications/deliveries", params={"status": "nope"}, headers=admin)
        assert r.status_code == 422

        robot.fail_with = None
        later = utcnow() + dt.timedelta(seconds=5)
        assert await outbox.dispatch_pending(fresh, now=later) == 2
        assert await outbox.dispatch_pending(fresh, now=later + dt.timedelta(hours=2)) == 0
    finally:
        await engine.dispose()

    assert [p for p, _ in sms.sent] == ["13800000001", "13900000003"]  # each number once, officers none
    assert (
        sms.sent[1][1]
        == "【e企安·365】指令逾期未确认\n请于今日 18:00 前确认：做好居住证登记\n/messaging/instructions/7"
    )
    assert len(robot.accepted) == 1
    assert robot.accepted[0]["at"]["atMobiles"] == ["13800000001", "13900000003"]
    assert robot.accepted[0]["text"]["content"].startswith("【e企安·365】指令逾期未确认")
    rows = (
        await db.execute(
            select(
                NotificationDelivery.channel, NotificationDelivery.recipient, NotificationDelivery.attempts
            )
        )
    ).all()
    assert sorted(rows) == [("dingtalk", "robot", 2), ("sms", "13800000001", 1), ("sms", "13900000003", 2)]

    # A redelivered event (say, the outbox row restored from a backup) sends nothing again.
    async with sessionmaker() as s:
        for event in await s.scalars(select(outbox.OutboxEvent)):
            await notification_events.on_send(s, event)
        await s.commit()
    assert (len(robot.accepted), len(sms.sent)) == (1, 2)


async def test_the_same_source_event_notified_twice_sends_once_and_default_stays_in_app(
    db: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession], robot: RobotServer
) -> None:
    _world, users = await _phones_world(db)
    sms = channels.LogSmsGateway()
    channels.use(channels.Channels(sms=sms, dingtalk=channels.DingTalkRobot(robot.url, SECRET)))
    async with sessionmaker() as s:
        source = outbox.emit(s, "test.source", {})
        await s.flush()
        for _ in range(2):  # e.g. a handler that ran twice
            await service.notify(
                s,
                user_ids=users,
                event_id=source.id,
                kind="hazards.overdue",
                title="隐患逾期",
                channels=("sms", "dingtalk"),
            )
        await service.notify(s, user_ids=users, event_id=source.id, kind="hazards.overdue", title="隐患逾期")
        source.dispatched_at = utcnow()
        await s.commit()
    assert await outbox.dispatch_pending(sessionmaker) == 6
    assert [p for p, _ in sms.sent] == ["13800000001", "13900000003"]
    assert len(robot.accepted) == 1
    assert await db.scalar(select(func.count()).select_from(Notification)) == 3  # the default: in-app only
    with pytest.raises(ValueError, match="pager"):
        await service.notify(db, user_ids=users, event_id=None, kind="k", title="t", channels=("pager",))


async def test_without_a_robot_dingtalk_is_skipped_and_sms_has_no_number_for_officers(
    db: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    world = await make_world(db)
    channels.use(channels.Channels(sms=channels.LogSmsGateway(), dingtalk=None))
    async with sessionmaker() as s:
        await service.notify(
            s,
            user_ids=[world.users["station_officer"].id],
            event_id=None,
            kind="k",
            title="t",
            channels=("dingtalk", "sms"),
        )
        await s.commit()
    assert await db.scalar(select(func.count()).select_from(outbox.OutboxEvent)) == 0
    assert await service.mobiles_of(db, [world.users["unit_security"].id]) == ["13812345678"]
