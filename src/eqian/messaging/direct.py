"""Writing a text frame to a WebSocket at once, without a task switch, where the server allows it.

ASGI's ``send`` is a coroutine, so a broadcast through it is one awaited call (and, with a writer
task per socket, one task switch) per recipient: 10,000 sockets on a worker took about 3 s, while
acknowledgements coming back were interleaved with the fan-out. A bare ``websockets`` server writes
the same 10,000 frames in one synchronous loop. Under uvicorn's sans-I/O WebSocket protocol (the
default when ``websockets`` is installed) the socket's protocol object is reachable from the ASGI
``send`` callable it hands the application; ``DirectWriter`` writes through that protocol exactly
as its own ``send`` does for a ``websocket.send`` event (the sans-I/O connection frames the text,
the transport takes the bytes) and answers ``False`` whenever that would not be safe (closing,
paused by back-pressure, not yet accepted, or any other server), so the caller falls back to the
awaited path. ``capture`` is a pure ASGI middleware that puts the protocol into the scope.
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

log = logging.getLogger(__name__)

SCOPE_KEY = "eqian.ws_protocol"
# What DirectWriter reads of the protocol object; a uvicorn release without one of them gets the
# awaited path everywhere instead of an AttributeError in the middle of a broadcast.
NEEDED = (
    "close_sent",
    "disconnected",
    "handshake_complete",
    "initial_response",
    "writable",
    "transport",
    "conn",
)

try:
    from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
    from websockets.exceptions import InvalidState
except ImportError:  # pragma: no cover - another server or WebSocket implementation: no fast path
    WebSocketsSansIOProtocol = None  # type: ignore[assignment,misc]
    InvalidState = RuntimeError  # type: ignore[assignment,misc]


class CaptureProtocol:
    """Outermost middleware: remembers which server protocol object carries a WebSocket."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket" and WebSocketsSansIOProtocol is not None:
            proto = getattr(send, "__self__", None)
            if isinstance(proto, WebSocketsSansIOProtocol) and all(hasattr(proto, a) for a in NEEDED):
                scope[SCOPE_KEY] = proto
        await self.app(scope, receive, send)


class DirectWriter:
    def __init__(self, proto: Any) -> None:
        self.proto = proto

    @classmethod
    def of(cls, scope: Scope) -> DirectWriter | None:
        proto = scope.get(SCOPE_KEY)
        return cls(proto) if proto is not None else None

    def send_text(self, text: str) -> bool:
        """Written now (True), or nothing written and the caller must take the awaited path."""
        p = self.proto
        if (
            p.close_sent
            or p.disconnected
            or not p.handshake_complete
            or p.initial_response is not None
            or not p.writable.is_set()  # the transport's buffer is full: wait like send() would
            or p.transport.is_closing()
        ):
            return False
        try:
            p.conn.send_text(text.encode())
        except InvalidState:
            return False
        p.transport.write(b"".join(p.conn.data_to_send()))
        return True
