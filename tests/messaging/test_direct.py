"""Direct writes (messaging/direct.py) against a real uvicorn server: the capture finds the sans-I/O
protocol, a frame written directly arrives in order, nothing is written once the socket closes, and
the hub's live messages take that path in the eqian app as it is assembled."""

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

from eqian.messaging.direct import CaptureProtocol, DirectWriter
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
    assert hub.direct_writes > before
