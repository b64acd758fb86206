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

A message that goes to many sockets (a live message to a channel's members, an ``acked`` to every
unit of a batch) is a ``Shared``: a server's text frame without extensions carries no mask and no
per-connection state, so its bytes are the same on every socket and are built once, where the
sans-I/O connection would build a frame object and serialise it again for each recipient (about a
third of a direct write's cost). Where a connection negotiated an extension (per-message deflate)
the text goes through the connection as before.

The other way, ``DirectReader`` hands a text frame that the application can take synchronously (an
acknowledgement or a read mark: 10,000 of them come back to a worker within a second of a
broadcast) to it from the protocol's own ``data_received``. Through ASGI each one is queued, the
socket's reading paused and resumed (two changes to the event loop's poller), and the reading task
woken up to take it off the queue. Only a frame that would be taken next anyway comes this way:
nothing is queued before it and the application's reader is waiting for it; any other frame, and
every frame the application does not take, goes the ASGI way, in order.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
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
# What DirectReader reads and replaces, likewise.
READER_NEEDED = ("close_sent", "curr_msg_data_type", "frames", "queue", "send_receive_event_to_app")

try:
    from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
    from websockets.exceptions import InvalidState
    from websockets.frames import Frame, Opcode
    from websockets.protocol import State
except ImportError:  # pragma: no cover - another server or WebSocket implementation: no fast path
    WebSocketsSansIOProtocol = None  # type: ignore[assignment,misc]
    InvalidState = RuntimeError  # type: ignore[assignment,misc]


class Shared:
    """One text message for many sockets: its server frame is serialised once, on first use."""

    __slots__ = ("_wire", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self._wire: bytes | None = None

    @property
    def wire(self) -> bytes:
        if self._wire is None:
            self._wire = Frame(Opcode.TEXT, self.text.encode()).serialize(mask=False)
        return self._wire


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

    def _open(self) -> bool:
        p = self.proto
        return not (
            p.close_sent
            or p.disconnected
            or not p.handshake_complete
            or p.initial_response is not None
            or not p.writable.is_set()  # the transport's buffer is full: wait like send() would
            or p.transport.is_closing()
        )

    def send_text(self, text: str) -> bool:
        """Written now (True), or nothing written and the caller must take the awaited path."""
        if not self._open():
            return False
        p = self.proto
        try:
            p.conn.send_text(text.encode())
        except InvalidState:
            return False
        p.transport.write(b"".join(p.conn.data_to_send()))
        return True

    def send(self, out: str | Shared) -> bool:
        """``send_text``, with a ``Shared`` message's ready frame where the connection allows it:
        open, no extension that rewrites frames, no fragmented message under way, nothing of its
        own waiting to be written before it."""
        if isinstance(out, str):
            return self.send_text(out)
        conn = self.proto.conn
        if conn.extensions or conn.expect_continuation_frame or conn.writes:
            return self.send_text(out.text)
        if not self._open() or conn.state is not State.OPEN:
            return False
        self.proto.transport.write(out.wire)
        return True


class DirectReader:
    @staticmethod
    def install(scope: Scope, take: Callable[[str], bool]) -> bool:
        """From now on the socket's complete text messages are offered to ``take`` first, when
        nothing waits in the ASGI queue; ``take`` answers whether it handled the text. False when
        the server gives no such way (the ASGI path stays the only one)."""
        proto = scope.get(SCOPE_KEY)
        if proto is None or not all(hasattr(proto, a) for a in READER_NEEDED):
            return False
        to_app = proto.send_receive_event_to_app

        def receive_now() -> None:
            if proto.curr_msg_data_type == "text" and not proto.close_sent and proto.queue.empty():
                frames = proto.frames
                data = frames[0] if len(frames) == 1 else b"".join(frames)
                try:
                    text: str | None = data.decode()
                except UnicodeDecodeError:
                    text = None  # the server answers that with a close of its own
                if text is not None and take(text):
                    proto.frames = []
                    return
            to_app()

        # An attribute of this connection's protocol object only: its handle_text calls it.
        proto.send_receive_event_to_app = receive_now
        return True
