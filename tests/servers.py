"""Real servers for the tests that need a socket: a free port, uvicorn in the test's own event loop,
and how a WebSocket was closed."""

from __future__ import annotations

import asyncio
import itertools
import os
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Literal

import uvicorn
from starlette.types import ASGIApp
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

TIMEOUT = 10.0


# Ports for the servers the tests start: below the kernel's ephemeral range (32768-60999 by
# default, which bind(0) and outgoing connections draw from) and in a block of their own per xdist
# worker. A port found by binding to 0 and closing could be taken by another worker's server
# before ours bound it; that server then answered our health check, and our tokens got 4401 from a
# server on another database.
PORT_BLOCK = 400
_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
_INDEX = int(_WORKER[2:]) + 1 if _WORKER.startswith("gw") and _WORKER[2:].isdigit() else 0
_PORTS = itertools.cycle(range(20000 + PORT_BLOCK * _INDEX, 20000 + PORT_BLOCK * (_INDEX + 1)))


def free_port() -> int:
    """A port of this test process's block that nothing listens on now; successive calls give
    successive ports, so servers started together never share one."""
    for _ in range(PORT_BLOCK):
        port = next(_PORTS)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in this worker's block of {PORT_BLOCK}")


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
