"""Real servers for the tests that need a socket: a free port, uvicorn in the test's own event loop,
and how a WebSocket was closed."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Literal

import uvicorn
from starlette.types import ASGIApp
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

TIMEOUT = 10.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@asynccontextmanager
async def serving(
    app: ASGIApp, *, lifespan: Literal["on", "off"] = "off", deflate: bool = True
) -> AsyncIterator[str]:
    """uvicorn (its default WebSocket implementation) in this event loop; yields ``host:port``.
    ``lifespan="off"`` for an app shared with other tests, which must not be shut down here;
    ``deflate=False`` serves as ``eqian serve`` does, without per-message compression."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            lifespan=lifespan,
            log_level="warning",
            ws_per_message_deflate=deflate,
        )
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        assert not task.done(), "server did not start"
        await asyncio.sleep(0.01)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def closed_with(ws: ClientConnection) -> int | None:
    """Waits without sending anything: the server must close the socket on its own; its close code."""
    try:
        while True:
            await asyncio.wait_for(ws.recv(), TIMEOUT)
    except ConnectionClosed as exc:
        return exc.rcvd.code if exc.rcvd else None
