"""Direct writes and reads (messaging/direct.py) against a real uvicorn server: the capture finds the
sans-I/O protocol, a frame written directly arrives in order, nothing is written once the socket
closes, a frame is taken straight from the socket only while nothing waits before it, and the hub's
live messages and acknowledgements take those paths in the eqian app as it is assembled."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket
from websockets.asyncio.client import connect

from eqian.messaging.direct import CaptureProtocol, DirectReader, DirectWriter, Shared
from eqian.messaging.ws import get_hub
from tests.messaging.helpers import API, make_msg_world
from tests.servers import serving


async def test_direct_write_in_order_and_refused_after_close() -> None:
    results: list[Any] = []

    async def endpoint(ws: WebSocket) -> None:
        await ws.accept()
        writer = DirectWriter.of(ws.scope)
        results.append(writer is not None)
        assert writer is not None
        await ws.send_text("first")  # the awaited path and the direct one share one order
        results.append(writer.send_text("second"))
        await ws.send_text("third")
        await ws.receive_text()  # the client's go-ahead
        await ws.close()
        results.append(writer.send_text("after close"))

    app = CaptureProtocol(Starlette(routes=[WebSocketRoute("/ws", endpoint)]))
    async with serving(app) as base, connect(f"ws://{base}/ws") as ws:
        got = [await ws.recv() for _ in range(3)]
        await ws.send("go")
        await ws.wait_closed()
    assert got == ["first", "second", "third"]
    assert results == [True, True, False]


async def test_shared_frame_reaches_every_socket_with_or_without_compression() -> None:
    """One ``Shared`` message, framed once, written to several sockets between awaited sends: each
    client reads it intact and in order, whether the socket negotiated per-message deflate (then
    the connection frames it) or not (the ready frame is written)."""
    long_text = "请各单位于今晚八点前完成消防通道检查并回复。" * 40  # over 125 bytes: extended length
    shared = Shared(json.dumps({"type": "notice", "text": long_text}, ensure_ascii=False))
    writers: list[DirectWriter] = []
    written: list[bool] = []
    everyone_in = asyncio.Event()
    clients = 3

    async def endpoint(ws: WebSocket) -> None:
        await ws.accept()
        writer = DirectWriter.of(ws.scope)
        assert writer is not None
        writers.append(writer)
        await ws.send_text("before")
        if len(writers) == clients:
            everyone_in.set()
        await everyone_in.wait()
        if writer is writers[0]:
            written.extend(w.send(shared) for w in writers)
            for w in writers:
                w.send("after")
        await ws.receive_text()
        await ws.close()
        written.append(writer.send(shared))  # closed: nothing written, the caller would fall back

    app = CaptureProtocol(Starlette(routes=[WebSocketRoute("/ws", endpoint)]))
    for deflate in (False, True):
        writers.clear()
        written.clear()
        everyone_in.clear()
        async with serving(app, deflate=deflate) as base:
            sockets = [await connect(f"ws://{base}/ws").__aenter__() for _ in range(clients)]
            try:
                got = [[await asyncio.wait_for(ws.recv(), 10) for _ in range(3)] for ws in sockets]
                negotiated = [bool(ws.protocol.extensions) for ws in sockets]
                for ws in sockets:
                    await ws.send("go")
                    await ws.wait_closed()
            finally:
                for ws in sockets:
                    await ws.close()
        assert negotiated == [deflate] * clients
        assert got == [["before", shared.text, "after"]] * clients
        assert written == [True] * clients + [False] * clients


async def test_without_capture_there_is_no_direct_writer() -> None:
    seen: list[DirectWriter | None] = []

    async def endpoint(ws: WebSocket) -> None:
        await ws.accept()
        seen.append(DirectWriter.of(ws.scope))
        await ws.close()

    async with (
        serving(Starlette(routes=[WebSocketRoute("/ws", endpoint)])) as base,
        connect(f"ws://{base}/ws") as ws,
    ):
        await ws.wait_closed()
    assert seen == [None]


async def test_direct_reader_takes_a_frame_only_while_the_app_waits_for_it() -> None:
    """``take`` is offered each text frame; one it refuses, and every frame while another waits in
    the ASGI queue, reaches ``receive_text`` in the order sent."""
    taken: list[str] = []
    received: list[str] = []
    app_waits = False
    installed: list[bool] = []

    def take(text: str) -> bool:
        if app_waits and text.startswith("t"):
            taken.append(text)
            return True
        return False

    async def endpoint(ws: WebSocket) -> None:
        nonlocal app_waits
        await ws.accept()
        installed.append(DirectReader.install(ws.scope, take))
        while True:
            app_waits = True
            text = await ws.receive_text()
            app_waits = False
            received.append(text)
            if text == "slow":
                await asyncio.sleep(0.3)  # "t2" arrives meanwhile: the app is busy, not waiting
            if text == "bye":
                break
        await ws.close()

    app = CaptureProtocol(Starlette(routes=[WebSocketRoute("/ws", endpoint)]))
    async with serving(app, deflate=False) as base, connect(f"ws://{base}/ws") as ws:
        await ws.send("t1")
        await asyncio.sleep(0.1)
        await ws.send("slow")
        await ws.send("t2")
        await ws.send("x1")
        await asyncio.sleep(0.5)
        await ws.send("t3")
        await asyncio.sleep(0.1)
        await ws.send("bye")
        await ws.wait_closed()
    assert installed == [True]
    assert taken == ["t1", "t3"]
    assert received == ["slow", "t2", "x1", "bye"]


async def test_without_capture_there_is_no_direct_reader() -> None:
    installed: list[bool] = []

    async def endpoint(ws: WebSocket) -> None:
        await ws.accept()
        installed.append(DirectReader.install(ws.scope, lambda text: True))
        received = await ws.receive_text()  # still the ASGI way
        await ws.send_text(received)
        await ws.close()

    async with (
        serving(Starlette(routes=[WebSocketRoute("/ws", endpoint)])) as base,
        connect(f"ws://{base}/ws") as ws,
    ):
        await ws.send("hello")
        assert await ws.recv() == "hello"
        await ws.wait_closed()
    assert installed == [False]


async def test_live_instruction_is_written_directly(
    app: FastAPI, db: AsyncSession, client: httpx.AsyncClient
) -> None:
    mw = await make_msg_world(db)
    hub = get_hub(app)
    before = hub.direct_writes
    async with serving(app) as base, connect(f"ws://{base}/ws", origin=None) as ws:
        await ws.send(json.dumps({"type": "auth", "token": mw.tokens["unit_security"]}))
        ready = json.loads(await ws.recv())
        assert ready["type"] == "ready"
        await ws.send(
            json.dumps(
                {"type": "resume", "cursors": {str(c["id"]): c["last_seq"] for c in ready["channels"]}}
            )
        )
        while json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] != "resumed":
            pass
        r = await client.post(
            API + "/instructions",
            headers=mw.headers["station_officer"],
            json={
                "channel_id": mw.channels[f"station:{mw.world.station_a}"],
                "title": "春季安全检查",
                "body": "请确认",
                "deadline": "2099-01-01T00:00:00+00:00",
            },
        )
        assert r.status_code == 201, r.text
        instruction_id = r.json()["id"]
        while True:
            frame = json.loads(await asyncio.wait_for(ws.recv(), 10))
            if frame["type"] == "message" and (frame.get("instruction") or {}).get("id") == instruction_id:
                break
        # The acknowledgement is taken straight from the socket, refused ones answer as before.
        reads_before = hub.direct_reads
        await ws.send(json.dumps({"type": "ack", "instruction_id": instruction_id, "text": "收到"}))
        await ws.send(json.dumps({"type": "ack"}))
        answers = [json.loads(await asyncio.wait_for(ws.recv(), 10)) for _ in range(2)]
        # An acknowledgement right behind a frame still being handled (a chat message, refused
        # after a database read: the station channel is for officers) waits its turn on the ASGI
        # path: both are answered, in order, neither is lost.
        channel_id = mw.channels[f"station:{mw.world.station_a}"]
        await ws.send(
            json.dumps({"type": "send", "channel_id": channel_id, "body": "已安排", "client_id": "c1"})
        )
        await ws.send(json.dumps({"type": "ack", "instruction_id": instruction_id}))
        seen: list[str] = []
        while not {"forbidden", "acked"} <= set(seen):
            frame = json.loads(await asyncio.wait_for(ws.recv(), 10))
            seen.append(frame["type"] if frame["type"] != "error" else frame["code"])
        assert seen.index("forbidden") < seen.index("acked"), seen
    assert hub.direct_writes > before
    assert hub.direct_reads >= reads_before + 2
    assert sorted(a["type"] for a in answers) == ["acked", "error"], answers
    assert next(a for a in answers if a["type"] == "error")["code"] == "bad_request"
    r = await client.get(
        API + f"/instructions/{instruction_id}/receipts", headers=mw.headers["station_officer"]
    )
    assert r.status_code == 200, r.text
    [acked] = [x for x in r.json()["items"] if x["acknowledged_at"] is not None]
    assert acked["unit_id"] == mw.world.units["a1"]
    assert acked["ack_text"] == "收到"
