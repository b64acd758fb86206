"""Channels, messages, instructions, escalation and assistance over the JSON API."""

from __future__ import annotations

import asyncio
import datetime as dt

import httpx
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from eqian.core import outbox
from eqian.core.audit import AuditLog
from eqian.core.db import utcnow
from eqian.core.permissions import Principal
from eqian.messaging import facts, schemas, service
from eqian.messaging.models import Channel, Message, Receipt
from eqian.notifications.models import Notification
from eqian.organizations.models import Unit
from eqian.web import handlers
from tests.messaging.helpers import API, make_msg_world

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


async def test_channels_follow_registry_and_scope(client: httpx.AsyncClient, db: AsyncSession) -> None:
    mw = await make_msg_world(db)
    w = mw.world
    a, b = w.station_a, w.station_b

    async def ids(who: str, **params: object) -> set[int]:
        resp = await client.get(f"{API}/channels", params={"limit": 500, **params}, headers=mw.headers[who])
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert body["total"] == len(body["items"])
        return {c["id"] for c in body["items"]}

    station_a = {v for k, v in mw.channels.items() if k == f"station:{a}" or k.startswith(f"category:{a}:")}
    station_a.add(mw.channels[f"sp:{w.sp_a}"])
    assert await ids("station_officer") == station_a
    assert len(await ids("bureau_admin")) == 2 * 12 + 2
    # a1 (garment, service point A): the station channel, its category's, its service point's.
    unit_a1 = {mw.channels[f"station:{a}"], mw.channels[f"category:{a}:garment"], mw.channels[f"sp:{w.sp_a}"]}
    assert await ids("unit_security") == unit_a1
    assert await ids("unit_security_b1") == {
        mw.channels[f"station:{b}"],
        mw.channels[f"category:{b}:garment"],
        mw.channels[f"sp:{w.sp_b}"],
    }
    assert await ids("mediator") == set()
    assert await ids("liaison_officer") == unit_a1  # through a1, the unit assigned to them

    # Membership is derived: a unit moving to another category changes channel at once.
    market = mw.channels[f"category:{a}:market"]
    detail = (await client.get(f"{API}/channels/{market}", headers=mw.headers["station_officer"])).json()
    assert detail["member_units"] == 1  # a2
    resp = await client.get(f"{API}/channels/{market}", headers=mw.headers["unit_security"])
    assert resp.status_code == 404
    from eqian.organizations.models import Unit

    await db.execute(update(Unit).where(Unit.id == w.units["a1"]).values(category_code="market"))
    assert market in await ids("unit_security")
    detail = (await client.get(f"{API}/channels/{market}", headers=mw.headers["station_officer"])).json()
    assert detail["member_units"] == 2

    # Units read the broadcast channels but do not post there; officers do.
    ch = mw.channels[f"station:{a}"]
    resp = await client.post(
        f"{API}/channels/{ch}/messages", json={"body": "你好"}, headers=mw.headers["unit_security"]
    )
    assert resp.status_code == 403
    for n in range(3):
        resp = await client.post(
            f"{API}/channels/{ch}/messages", json={"body": f"通知{n}"}, headers=mw.headers["station_officer"]
        )
        assert resp.status_code == 201, resp.text
        assert resp.json()["seq"] == n + 1
    other = mw.channels[f"station:{b}"]
    resp = await client.post(
        f"{API}/channels/{other}/messages", json={"body": "x"}, headers=mw.headers["station_officer"]
    )
    assert resp.status_code == 404

    # Direct conversation: the officer opens it, the unit sees it and answers, with a reply and mention.
    resp = await client.post(
        f"{API}/channels/direct", json={"unit_id": w.units["a1"]}, headers=mw.headers["station_officer"]
    )
    assert resp.status_code == 200, resp.text
    direct = resp.json()["id"]
    again = await client.post(
        f"{API}/channels/direct", json={"unit_id": w.units["a1"]}, headers=mw.headers["station_officer"]
    )
    assert again.json()["id"] == direct
    assert direct in await ids("unit_security")
    assert direct not in await ids("unit_security_a2")
    first = (
        await client.post(
            f"{API}/channels/{direct}/messages", json={"body": "在吗"}, headers=mw.headers["station_officer"]
        )
    ).json()
    officer_id = mw.user("station_officer").id
    resp = await client.post(
        f"{API}/channels/{direct}/messages",
        json={"body": "在", "reply_to": first["id"], "mentions": [officer_id]},
        headers=mw.headers["unit_security"],
    )
    assert resp.status_code == 201, resp.text
    assert resp.json()["reply_to"] == first["id"]
    assert resp.json()["mentions"] == [officer_id]
    assert resp.json()["sender"]["role"] == "unit_security"
    resp = await client.post(
        f"{API}/channels/{direct}/messages",
        json={"body": "x", "reply_to": 999999},
        headers=mw.headers["unit_security"],
    )
    assert resp.status_code == 422

    # A resend with the same client_id (after a reconnect) returns the first message, not a new one.
    url = f"{API}/channels/{direct}/messages"
    again_body = {"body": "收到", "client_id": "c-1"}
    first_send = await client.post(url, json=again_body, headers=mw.headers["unit_security"])
    resend = await client.post(url, json=again_body, headers=mw.headers["unit_security"])
    assert first_send.status_code == resend.status_code == 201
    assert resend.json()["id"] == first_send.json()["id"]
    assert await db.scalar(select(Channel.last_seq).where(Channel.id == direct)) == first_send.json()["seq"]

    history = await client.get(
        f"{API}/channels/{ch}/messages", params={"after_seq": 1}, headers=mw.headers["unit_security"]
    )
    assert [m["seq"] for m in history.json()["items"]] == [2, 3]
    latest = await client.get(
        f"{API}/channels/{ch}/messages", params={"limit": 2}, headers=mw.headers["unit_security"]
    )
    assert [m["body"] for m in latest.json()["items"]] == ["通知1", "通知2"]

    # Ad-hoc group: units in scope only.
    resp = await client.post(
        f"{API}/channels",
        json={"name": "童装专班", "unit_ids": [w.units["a1"], w.units["b1"]]},
        headers=mw.headers["station_officer"],
    )
    assert resp.status_code == 422
    resp = await client.post(
        f"{API}/channels",
        json={"name": "童装专班", "unit_ids": [w.units["a1"]], "user_ids": [mw.user("liaison_officer").id]},
        headers=mw.headers["station_officer"],
    )
    assert resp.status_code == 201, resp.text
    group = resp.json()["id"]
    assert group in await ids("unit_security")
    assert group in await ids("liaison_officer")
    assert group not in await ids("unit_security_a2")
    resp = await client.post(f"{API}/channels", json={"name": "x"}, headers=mw.headers["unit_security"])
    assert resp.status_code == 403


async def test_seq_is_gap_free_under_concurrent_senders(
    db: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    mw = await make_msg_world(db)
    from eqian.core.accounts import User

    user: User = mw.user("station_officer")
    actor = Principal.of(user)
    ch = mw.channels[f"station:{mw.world.station_a}"]

    async def send(n: int) -> int:
        async with sessionmaker() as session:
            out = await service.send_message(session, actor, ch, schemas.MessageIn(body=f"m{n}"))
            return int(out["seq"])

    seqs = await asyncio.gather(*(send(n) for n in range(25)))
    assert sorted(seqs) == list(range(1, 26))
    rows = list(await db.scalars(select(Message.seq).where(Message.channel_id == ch).order_by(Message.seq)))
    assert rows == list(range(1, 26))
    assert await db.scalar(select(Channel.last_seq).where(Channel.id == ch)) == 25


async def test_instruction_receipts_escalation_and_facts(
    client: httpx.AsyncClient, db: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    mw = await make_msg_world(db)
    w = mw.world
    ch = mw.channels[f"station:{w.station_a}"]
    deadline = utcnow() + dt.timedelta(hours=2)
    body = {
        "channel_id": ch,
        "title": "做好居住证登记",
        "body": "本周内完成员工居住登记",
        "deadline": deadline.isoformat(),
    }
    for who in ("unit_security", "liaison_officer", "station_officer_b"):
        resp = await client.post(f"{API}/instructions", json=body, headers=mw.headers[who])
        assert resp.status_code in (403, 404), (who, resp.status_code)
    resp = await client.post(
        f"{API}/instructions",
        json={**body, "deadline": "2020-01-01T00:00:00+08:00"},
        headers=mw.headers["station_officer"],
    )
    assert resp.status_code == 422
    resp = await client.post(f"{API}/instructions", json=body, headers=mw.headers["station_officer"])
    assert resp.status_code == 201, resp.text
    instruction = resp.json()
    iid = instruction["id"]
    assert instruction["progress"] == {
        "instruction_id": iid,
        "total": 3,
        "delivered": 0,
        "read": 0,
        "acknowledged": 0,
        "overdue": 0,
    }
    # The instruction is a message of the channel, and in the units' inboxes.
    msgs = (await client.get(f"{API}/channels/{ch}/messages", headers=mw.headers["unit_security_a2"])).json()[
        "items"
    ]
    assert msgs[-1]["kind"] == "instruction"
    assert msgs[-1]["instruction"]["id"] == iid
    inbox = (
        await client.get(f"{API}/inbox", params={"pending": True}, headers=mw.headers["unit_security_a2"])
    ).json()
    assert [i["instruction_id"] for i in inbox["items"]] == [iid]
    resp = await client.get(f"{API}/instructions/{iid}", headers=mw.headers["unit_security_b1"])
    assert resp.status_code == 404

    # a2 reads then acknowledges with a reply; a second acknowledgement changes nothing.
    resp = await client.post(f"{API}/instructions/{iid}/read", headers=mw.headers["unit_security_a2"])
    assert resp.json()["status"] == "read"
    resp = await client.post(
        f"{API}/instructions/{iid}/ack", json={"text": "已安排"}, headers=mw.headers["unit_security_a2"]
    )
    assert resp.status_code == 200, resp.text
    first = resp.json()
    assert first["status"] == "acknowledged"
    assert first["ack_text"] == "已安排"
    assert first["ack_latency_seconds"] is not None
    assert first["ack_latency_seconds"] >= 0
    again = (
        await client.post(
            f"{API}/instructions/{iid}/ack", json={"text": "再次"}, headers=mw.headers["unit_security_a2"]
        )
    ).json()
    assert again["acknowledged_at"] == first["acknowledged_at"]
    assert again["ack_text"] == "已安排"
    resp = await client.post(f"{API}/instructions/{iid}/ack", json={}, headers=mw.headers["unit_security_b1"])
    assert resp.status_code == 404
    resp = await client.post(f"{API}/instructions/{iid}/ack", json={}, headers=mw.headers["station_officer"])
    assert resp.status_code == 403

    progress = (await client.get(f"{API}/instructions/{iid}", headers=mw.headers["station_officer"])).json()[
        "progress"
    ]
    assert (progress["acknowledged"], progress["read"], progress["total"]) == (1, 1, 3)
    pending = (
        await client.get(
            f"{API}/instructions/{iid}/receipts",
            params={"status": "pending"},
            headers=mw.headers["station_officer"],
        )
    ).json()
    assert {r["unit_id"] for r in pending["items"]} == w.unit_ids("a1", "a3")
    mine = (
        await client.get(f"{API}/instructions/{iid}/receipts", headers=mw.headers["unit_security_a2"])
    ).json()
    assert [r["unit_id"] for r in mine["items"]] == [w.units["a2"]]  # a unit sees only its own receipt

    # Deadline passes: the job escalates a1 and a3 once, however often it runs.
    later = deadline + dt.timedelta(minutes=1)
    async with sessionmaker() as session:
        assert await service.escalate_overdue(session, now=later) == 1
    async with sessionmaker() as session:
        assert await service.escalate_overdue(session, now=later) == 0
    escalated = (await client.get(f"{API}/escalations", headers=mw.headers["station_officer"])).json()
    assert {e["unit_id"] for e in escalated["items"]} == w.unit_ids("a1", "a3")
    liaison = (await client.get(f"{API}/escalations", headers=mw.headers["liaison_officer"])).json()
    assert [e["unit_id"] for e in liaison["items"]] == [w.units["a1"]]
    assert (await client.get(f"{API}/escalations", headers=mw.headers["unit_security"])).status_code == 403
    events = list(
        await db.scalars(select(outbox.OutboxEvent).where(outbox.OutboxEvent.topic == service.OVERDUE_TOPIC))
    )
    assert len(events) == 1
    assert sorted(events[0].payload["unit_ids"]) == sorted(w.unit_ids("a1", "a3"))
    handlers.register_all()
    while await outbox.dispatch_pending(sessionmaker) > 0:
        pass
    told = set(
        await db.scalars(select(Notification.user_id).where(Notification.kind == service.OVERDUE_TOPIC))
    )
    assert {mw.user("unit_security").id, mw.user("liaison_officer").id, mw.user("station_officer").id} <= told
    assert mw.user("unit_security_a2").id not in told
    sent = await db.scalar(
        select(func.count())
        .select_from(outbox.OutboxEvent)
        .where(outbox.OutboxEvent.topic == service.SENT_TOPIC)
    )
    assert sent == 1
    assert (
        await db.scalar(
            select(func.count())
            .select_from(AuditLog)
            .where(AuditLog.action == "messaging.instruction.create")
        )
        == 1
    )

    # Monthly facts count the receipts in the month of the deadline, once it has passed.
    month_start = deadline.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    nxt = (month_start + dt.timedelta(days=32)).replace(day=1)
    async with sessionmaker() as session:
        assert await facts.monthly_facts(session, month_start, nxt, now=deadline) == []
        got = await facts.monthly_facts(session, month_start, nxt, now=later)
    by = {(f.unit_id, f.metric): f.value for f in got}
    assert by[(w.units["a2"], "messaging.acknowledged_on_time")] == 1
    assert by[(w.units["a1"], "messaging.instructions")] == 1
    assert by[(w.units["a1"], "messaging.acknowledged")] == 0
    assert sum(v for (u, m), v in by.items() if m == "messaging.instructions") == 3
    late = await db.scalar(select(Receipt.escalated_at).where(Receipt.unit_id == w.units["a2"]))
    assert late is None
    # a1 acknowledges only in the next month: the month, judged at its end, stays as it was.
    await db.execute(
        update(Receipt)
        .where(Receipt.unit_id == w.units["a1"])
        .values(acknowledged_at=nxt + dt.timedelta(days=1), ack_latency_seconds=86400.0)
    )
    async with sessionmaker() as session:
        again = await facts.monthly_facts(session, month_start, nxt, now=nxt + dt.timedelta(days=40))
    assert {(f.unit_id, f.metric): f.value for f in again} == by


async def test_assistance_and_attachments(client: httpx.AsyncClient, db: AsyncSession) -> None:
    mw = await make_msg_world(db)
    w = mw.world
    officer = mw.headers["station_officer"]
    resp = await client.post(
        f"{API}/attachments", files={"file": ("a.txt", b"hello", "text/plain")}, headers=officer
    )
    assert resp.status_code == 422
    assert resp.json()["error"]["details"][0]["code"] == "unsupported_type"
    resp = await client.post(
        f"{API}/attachments", files={"file": ("走失儿童.png", PNG, "image/png")}, headers=officer
    )
    assert resp.status_code == 201, resp.text
    photo = resp.json()
    assert photo["content_type"] == "image/png"
    assert photo["size"] == len(PNG)

    body = {
        "description": "吾悦广场附近走失一名5岁男孩，穿红色外套",
        "lat": 30.84,
        "lng": 120.26,
        "radius_m": 500,
        "unit_categories": ["market"],
        "attachment_id": photo["id"],
    }
    assert (
        await client.post(f"{API}/assistance", json=body, headers=mw.headers["unit_security"])
    ).status_code == 403
    bad = await client.post(f"{API}/assistance", json={**body, "unit_categories": ["nope"]}, headers=officer)
    assert bad.status_code == 422
    resp = await client.post(f"{API}/assistance", json=body, headers=officer)
    assert resp.status_code == 201, resp.text
    assist = resp.json()
    assert assist["recipients"] == 1
    assert [u["id"] for u in assist["recipient_units"]] == [w.units["a2"]]
    aid = assist["id"]
    # The mall (a2) sees it and the photo; a1 (a garment firm) does not.
    assert (
        await client.get(f"{API}/assistance/{aid}", headers=mw.headers["unit_security_a2"])
    ).status_code == 200
    assert (
        await client.get(f"{API}/assistance/{aid}", headers=mw.headers["unit_security"])
    ).status_code == 404
    got = await client.get(f"{API}/attachments/{photo['id']}", headers=mw.headers["unit_security_a2"])
    assert got.status_code == 200
    assert got.content == PNG
    assert (
        await client.get(f"{API}/attachments/{photo['id']}", headers=mw.headers["unit_security"])
    ).status_code == 404
    listed = (await client.get(f"{API}/assistance", headers=mw.headers["unit_security_a2"])).json()
    assert [a["id"] for a in listed["items"]] == [aid]

    resp = await client.post(
        f"{API}/assistance/{aid}/replies",
        json={"body": "监控显示男孩在三楼"},
        headers=mw.headers["unit_security_a2"],
    )
    assert resp.status_code == 201, resp.text
    detail = (await client.get(f"{API}/assistance/{aid}", headers=officer)).json()
    assert [r["body"] for r in detail["replies"]] == ["监控显示男孩在三楼"]
    resp = await client.post(
        f"{API}/assistance/{aid}/close", json={"outcome": "已找到，交还家长"}, headers=officer
    )
    assert resp.status_code == 200
    assert resp.json()["status"] == "closed"
    resp = await client.post(
        f"{API}/assistance/{aid}/replies", json={"body": "晚了"}, headers=mw.headers["unit_security_a2"]
    )
    assert resp.status_code == 409
    assert (
        await client.post(f"{API}/assistance/{aid}/close", json={"outcome": "x"}, headers=officer)
    ).status_code == 409

    # An attachment goes with a message once, and only its uploader can attach it.
    resp = await client.post(
        f"{API}/attachments", files={"file": ("p.pdf", b"%PDF-1.4 x", "application/pdf")}, headers=officer
    )
    pdf = resp.json()["id"]
    ch = mw.channels[f"station:{w.station_a}"]
    resp = await client.post(
        f"{API}/channels/{ch}/messages",
        json={"body": "通报", "attachment_ids": [pdf]},
        headers=mw.headers["bureau_admin"],
    )
    assert resp.status_code == 422
    resp = await client.post(
        f"{API}/channels/{ch}/messages", json={"body": "通报", "attachment_ids": [pdf]}, headers=officer
    )
    assert resp.status_code == 201
    assert resp.json()["attachments"][0]["id"] == pdf
    assert (
        await client.get(f"{API}/attachments/{pdf}", headers=mw.headers["unit_security"])
    ).status_code == 200
    assert (
        await client.get(f"{API}/attachments/{pdf}", headers=mw.headers["unit_security_b1"])
    ).status_code == 404


async def test_bureau_assistance_belongs_to_the_station_of_the_nearest_unit(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    """A bureau officer's request near two stations' units goes to the station whose unit is
    nearest the spot, whatever order the database returns the units in."""
    mw = await make_msg_world(db)
    w = mw.world
    await db.execute(update(Unit).where(Unit.id == w.units["b2"]).values(lat=30.8418))
    await db.commit()
    body = {"description": "协查可疑车辆", "lat": 30.842, "lng": 120.26, "radius_m": 1000}
    resp = await client.post(f"{API}/assistance", json=body, headers=mw.headers["bureau_admin"])
    assert resp.status_code == 201, resp.text
    assert resp.json()["station_id"] == w.station_b
    assert resp.json()["recipients"] == 5  # every unit is within the radius, of both stations
    # Station A's officers follow it too, for their own units only; replies of either station's
    # units reach both, and the unit of another station never sees the other's units.
    aid = resp.json()["id"]
    listed = await client.get(f"{API}/assistance", headers=mw.headers["station_officer"])
    assert aid in [a["id"] for a in listed.json()["items"]]
    detail = await client.get(f"{API}/assistance/{aid}", headers=mw.headers["station_officer"])
    assert detail.status_code == 200, detail.text
    station_of = {w.units[k]: k[0] for k in ("a1", "a2", "a3", "b1", "b2") if k in w.units}
    assert {station_of.get(u["id"]) for u in detail.json()["recipient_units"]} == {"a"}
    reply = await client.post(
        f"{API}/assistance/{aid}/replies",
        json={"body": "本店监控已调取"},
        headers=mw.headers["unit_security"],
    )
    assert reply.status_code == 201, reply.text
    for officer in ("station_officer", "station_officer_b", "bureau_admin"):
        seen = await client.get(f"{API}/assistance/{aid}", headers=mw.headers[officer])
        assert [r["body"] for r in seen.json()["replies"]] == ["本店监控已调取"], officer
    # Station A follows it but does not close it; station B, whose request it is, does.
    outcome = {"outcome": "车辆已找到"}
    refused = await client.post(
        f"{API}/assistance/{aid}/close", json=outcome, headers=mw.headers["station_officer"]
    )
    assert refused.status_code == 403, refused.text
    closed = await client.post(
        f"{API}/assistance/{aid}/close", json=outcome, headers=mw.headers["station_officer_b"]
    )
    assert closed.status_code == 200, closed.text
    assert closed.json()["status"] == "closed"
    # A station none of whose units it reaches does not see it.
    far = {
        "description": "协查走失老人",
        "lat": 30.842,
        "lng": 120.26,
        "radius_m": 1000,
        "unit_categories": [],
    }
    await db.execute(update(Unit).where(Unit.station_id == w.station_a).values(lat=31.5))
    await db.commit()
    only_b = await client.post(f"{API}/assistance", json=far, headers=mw.headers["bureau_admin"])
    assert only_b.status_code == 201, only_b.text
    hidden = await client.get(
        f"{API}/assistance/{only_b.json()['id']}", headers=mw.headers["station_officer"]
    )
    assert hidden.status_code == 404
