"""The WebSocket /ws against real server processes: auth and Origin, live delivery in seq order
under concurrent senders, resume with nothing lost and nothing twice (on the other worker when
Redis is configured), batched acknowledgements, and sockets closed when their session ends."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from websockets.asyncio.client import ClientConnection, connect

from eqian.core import pubsub
from eqian.core.accounts import AuthSession, Role
from eqian.core.db import utcnow
from eqian.core.permissions import Principal, Scope, ScopeKind
from eqian.messaging.models import Receipt
from eqian.messaging.ws import feed_visible
from tests.factories import World
from tests.messaging.conftest import STATE
from tests.messaging.helpers import API, MsgWorld, make_msg_world
from tests.servers import closed_with

TIMEOUT = 10


async def recv(
    ws: ClientConnection, *kinds: str, skip: tuple[str, ...] = ("progress", "channel")
) -> dict[str, Any]:
    """The next frame of one of ``kinds``; frames of the ``skip`` types are passed over."""
    while True:
        frame: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
        if frame["type"] in kinds:
            return frame
        assert frame["type"] in skip, frame


async def login(addr: str, mw: MsgWorld, who: str) -> tuple[ClientConnection, dict[str, Any]]:
    ws = await connect(f"ws://{addr}/ws", max_size=2**22)
    await ws.send(json.dumps({"type": "auth", "token": mw.tokens[who]}))
    ready = await recv(ws, "ready")
    return ws, ready


async def test_auth_and_origin(ws_servers: list[str], db: AsyncSession) -> None:
    mw = await make_msg_world(db)
    addr = ws_servers[0]
    ws = await connect(f"ws://{addr}/ws")
    await ws.send(json.dumps({"type": "auth", "token": "not-a-token"}))
    assert await closed_with(ws) == 4401
    ws = await connect(f"ws://{addr}/ws", origin="http://evil.example")  # type: ignore[arg-type]
    assert await closed_with(ws) == 4403
    ws, ready = await login(addr, mw, "unit_security")
    a = mw.world.station_a
    assert {c["id"] for c in ready["channels"]} == {
        mw.channels[f"station:{a}"],
        mw.channels[f"category:{a}:garment"],
        mw.channels[f"sp:{mw.world.sp_a}"],
    }
    assert ready["user_id"] == mw.user("unit_security").id
    await ws.send(json.dumps({"type": "ping"}))
    assert (await recv(ws, "pong"))["type"] == "pong"
    await ws.send("{not json")
    assert (await recv(ws, "error"))["code"] == "bad_request"
    await ws.close()


async def test_live_resume_acks_and_session_end(ws_servers: list[str], db: AsyncSession) -> None:
    mw = await make_msg_world(db)
    first, last = ws_servers[0], ws_servers[-1]
    ch = mw.channels[f"station:{mw.world.station_a}"]
    unit, _ = await login(first, mw, "unit_security_a2")
    officer, _ = await login(last, mw, "station_officer")
    await unit.send(json.dumps({"type": "resume", "cursors": {str(ch): 0}}))
    assert (await recv(unit, "resumed"))["type"] == "resumed"

    # Sent over the socket of another worker, and concurrently over HTTP: every message arrives
    # once, in seq order.
    for n in range(3):
        await officer.send(
            json.dumps({"type": "send", "channel_id": ch, "body": f"ws{n}", "client_id": f"c{n}"})
        )
        sent = await recv(officer, "sent", skip=("message", "progress"))
        assert sent["client_id"] == f"c{n}"
    async with httpx.AsyncClient(base_url=f"http://{last}", timeout=30) as http:
        results = await asyncio.gather(
            *(
                http.post(
                    f"{API}/channels/{ch}/messages",
                    json={"body": f"http{n}"},
                    headers=mw.headers["station_officer"],
                )
                for n in range(20)
            )
        )
        assert all(r.status_code == 201 for r in results), [r.text for r in results]
        got = [(await recv(unit, "message"))["seq"] for _ in range(23)]
        assert got == list(range(1, 24))

        # The unit goes away; five more are sent; it comes back on the other worker and resumes.
        await unit.close()
        for n in range(5):
            await http.post(
                f"{API}/channels/{ch}/messages",
                json={"body": f"away{n}"},
                headers=mw.headers["station_officer"],
            )
        unit, ready = await login(last if first != last else first, mw, "unit_security_a2")
        assert {c["id"]: c["last_seq"] for c in ready["channels"]}[ch] == 28
        # One more arrives live between ready and resume: it must come once, after the backlog.
        await http.post(
            f"{API}/channels/{ch}/messages", json={"body": "during"}, headers=mw.headers["station_officer"]
        )
        await asyncio.sleep(0.3)
        await unit.send(json.dumps({"type": "resume", "cursors": {str(ch): 23}}))
        backlog = []
        while (frame := await recv(unit, "message", "resumed"))["type"] == "message":
            backlog.append((frame["seq"], frame["body"]))
        assert backlog == [*((24 + n, f"away{n}") for n in range(5)), (29, "during")]

        # An instruction: delivered live, acknowledged over the socket, the officer sees the count.
        deadline = (utcnow() + dt.timedelta(hours=1)).isoformat()
        resp = await http.post(
            f"{API}/instructions",
            json={"channel_id": ch, "title": "春季安全检查", "deadline": deadline},
            headers=mw.headers["station_officer"],
        )
        assert resp.status_code == 201, resp.text
        iid = resp.json()["id"]
    message = await recv(unit, "message")
    assert message["seq"] == 30  # the next one: "during" was not sent a second time
    assert message["kind"] == "instruction"
    assert message["instruction"]["id"] == iid
    assert message["instruction"]["requires_ack"] is True
    await unit.send(json.dumps({"type": "ack", "instruction_id": iid, "text": "收到"}))
    assert (await recv(unit, "acked"))["instruction_id"] == iid
    receipt = await db.scalar(
        select(Receipt).where(Receipt.instruction_id == iid, Receipt.unit_id == mw.world.units["a2"])
    )
    assert receipt is not None
    assert receipt.acknowledged_at is not None
    assert receipt.ack_text == "收到"
    assert receipt.delivered_at is not None
    assert receipt.delivered_at <= receipt.acknowledged_at
    first_ack = receipt.acknowledged_at
    while True:
        progress = await recv(officer, "progress", skip=("message",))
        if progress["instruction_id"] == iid and progress["acknowledged"] == 1:
            break
    assert progress["total"] == 3
    # A resent acknowledgement (after a reconnect) is answered again and changes nothing.
    await unit.send(json.dumps({"type": "ack", "instruction_id": iid, "text": "再次"}))
    assert (await recv(unit, "acked"))["instruction_id"] == iid
    receipt = await db.scalar(
        select(Receipt)
        .where(Receipt.instruction_id == iid, Receipt.unit_id == mw.world.units["a2"])
        .execution_options(populate_existing=True)
    )
    assert receipt is not None
    assert receipt.acknowledged_at == first_ack
    assert receipt.ack_text == "收到"
    # Units may not post in the station's broadcast channel.
    await unit.send(json.dumps({"type": "send", "channel_id": ch, "body": "x"}))
    assert (await recv(unit, "error"))["code"] == "forbidden"

    # Logout elsewhere: the socket is closed before its next use.
    await db.execute(
        update(AuthSession)
        .where(AuthSession.user_id == mw.user("unit_security_a2").id)
        .values(revoked_at=utcnow())
    )
    await unit.send(json.dumps({"type": "send", "channel_id": ch, "body": "还在吗"}))
    assert await closed_with(unit) == 4001
    await officer.close()


async def test_new_direct_channel_reaches_connected_unit(ws_servers: list[str], db: AsyncSession) -> None:
    mw = await make_msg_world(db)
    unit, _ = await login(ws_servers[0], mw, "unit_security")
    async with httpx.AsyncClient(base_url=f"http://{ws_servers[-1]}", timeout=30) as http:
        resp = await http.post(
            f"{API}/channels/direct",
            json={"unit_id": mw.world.units["a1"]},
            headers=mw.headers["station_officer"],
        )
        direct = resp.json()["id"]
        joined = await recv(unit, "channel")
        assert joined["channel"]["id"] == direct
        await http.post(
            f"{API}/channels/{direct}/messages",
            json={"body": "请回电"},
            headers=mw.headers["station_officer"],
        )
    msg = await recv(unit, "message")
    assert (msg["channel_id"], msg["seq"], msg["body"]) == (direct, 1, "请回电")
    await unit.send(json.dumps({"type": "send", "channel_id": direct, "body": "好的", "client_id": "x"}))
    # Its own message comes back as a message of the channel, and the "sent" confirmation.
    frames = {f["type"]: f for f in [await recv(unit, "sent", "message") for _ in range(2)]}
    assert frames["sent"]["seq"] == frames["message"]["seq"] == 2
    assert frames["sent"]["client_id"] == "x"
    await unit.close()


def test_feed_is_for_the_command() -> None:
    w = World(station_a=1)
    scope = Scope(ScopeKind.STATIONS, station_ids=frozenset({1}))
    station = Principal(1, "o", "o", Role.STATION_OFFICER, scope)
    unit = Principal(2, "u", "u", Role.UNIT_SECURITY, Scope(ScopeKind.UNITS, unit_ids=frozenset({5})))
    bureau = Principal(3, "b", "b", Role.BUREAU_ADMIN, Scope(ScopeKind.ALL))
    mine, other = {"station_id": w.station_a}, {"station_id": 2}
    assert feed_visible(station, mine)
    assert not feed_visible(station, other)
    assert feed_visible(bureau, other)
    assert not feed_visible(unit, mine)


async def test_feed_subscription_across_workers(ws_servers: list[str], db: AsyncSession) -> None:
    if not STATE.get("redis"):
        pytest.skip("needs Redis (EQIAN_TEST_REDIS_URL) to publish into the servers")
    mw = await make_msg_world(db)
    a, b = mw.world.station_a, mw.world.station_b
    officer, _ = await login(ws_servers[0], mw, "station_officer")
    unit, _ = await login(ws_servers[0], mw, "unit_security")
    bureau, _ = await login(ws_servers[-1], mw, "bureau_admin")
    for ws in (officer, unit, bureau):
        await ws.send(json.dumps({"type": "subscribe", "topics": ["feed"]}))
    await officer.send(json.dumps({"type": "subscribe", "topics": ["gossip"]}))
    assert (await recv(officer, "error", skip=("progress", "channel", "message")))["code"] == "bad_request"
    await asyncio.sleep(1.0)  # the workers' SUBSCRIBE reaches Redis
    broker = pubsub.RedisBroker(STATE["redis"])
    await broker.start()
    try:
        for station in (b, a):
            item = {"kind": "incident", "station_id": station, "at": "2026-11-23T12:00:00+00:00"}
            await broker.publish("feed", {**item, "title": f"警情{station}", "link": "/incidents"})
    finally:
        await broker.stop()
    assert (await recv(officer, "feed"))["item"]["station_id"] == a
    assert [(await recv(bureau, "feed"))["item"]["station_id"] for _ in range(2)] == [b, a]
    await unit.send(json.dumps({"type": "ping"}))
    assert (await recv(unit, "pong", skip=()))["type"] == "pong"  # no feed frame came first
    for ws in (officer, unit, bureau):
        await ws.close()
