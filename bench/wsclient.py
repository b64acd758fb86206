"""A lean WebSocket client for the load generators (RFC 6455, text frames, no extensions).

Why not ``websockets``: 20,000 clients share two cores with the servers they measure, and the
library's client costs about 100 µs per client per message (futures, a frame assembler, a
generator-based parser) — the load generator, not the server, then sets the delivery latency.
This one parses frames straight out of ``data_received`` and hands each text message to a
callback, synchronously, on the event loop; a 20,000-client benchmark spends its CPU where the
figures are about. It speaks only what the benchmarks need: one HTTP/1.1 upgrade with its accept
key checked, masked client frames, unmasked server frames (fragmented ones reassembled), pings
answered, close echoed. No compression is offered, so the server sends none.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import struct
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_TEXT, _BINARY, _CONTINUATION, _CLOSE, _PING, _PONG = 0x1, 0x2, 0x0, 0x8, 0x9, 0xA


class HandshakeError(ConnectionError):
    """The server did not answer the upgrade with 101 and the right accept key."""


def _mask(payload: bytes, key: bytes) -> bytes:
    n = len(payload)
    if n == 0:
        return payload
    # One big-integer XOR instead of a Python loop over bytes.
    keys = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "little") ^ int.from_bytes(keys, "little")).to_bytes(n, "little")


def frame(opcode: int, payload: bytes) -> bytes:
    """One final client frame, masked as the RFC requires of clients."""
    key = os.urandom(4)
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n < 65536:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    return head + key + _mask(payload, key)


class LeanSocket(asyncio.Protocol):
    """One client connection. ``opened`` resolves on the 101; ``closed`` when the TCP connection
    ends (with the error that ended it, if any); every complete text message goes to ``on_text``
    in the order it arrived. An exception raised by ``on_text`` aborts the connection."""

    def __init__(self, url: str, on_text: Callable[[LeanSocket, str], None], max_size: int = 2**20) -> None:
        parts = urlsplit(url)
        self.host = parts.netloc
        self.path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self.on_text = on_text
        self.max_size = max_size
        loop = asyncio.get_running_loop()
        self.opened: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()
        self.transport: asyncio.Transport | None = None
        self._key = base64.b64encode(os.urandom(16))
        self._buf = bytearray()
        self._fragments: list[bytes] | None = None
        self._fragment_opcode = _TEXT
        self._upgraded = False

    @staticmethod
    def address(url: str) -> tuple[str, int]:
        parts = urlsplit(url)
        return parts.hostname or "127.0.0.1", parts.port or 80

    # --- asyncio.Protocol ---

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(
            b"GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n"
            % (self.path.encode(), self.host.encode(), self._key)
        )

    def data_received(self, data: bytes) -> None:
        self._buf += data
        try:
            if not self._upgraded and not self._read_upgrade():
                return
            self._read_frames()
        except Exception as exc:  # a protocol error or the callback's: end this connection with it
            self._fail(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        error = exc or (None if self._upgraded else HandshakeError("closed before the upgrade"))
        self._settle(error)

    # --- sending ---

    def send_text(self, text: str) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(frame(_TEXT, text.encode()))

    def close(self, code: int = 1000) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(frame(_CLOSE, struct.pack("!H", code)))
            self.transport.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    # --- parsing ---

    def _fail(self, exc: Exception) -> None:
        self._settle(exc)
        self.abort()

    def _settle(self, error: Exception | None) -> None:
        for fut in (self.opened, self.closed):
            if fut.done():
                continue
            if error is None:
                fut.set_result(None)
            else:
                fut.set_exception(error)
                fut.exception()  # whoever awaits it still gets it; nobody may: no warning then

    def _read_upgrade(self) -> bool:
        end = self._buf.find(b"\r\n\r\n")
        if end < 0:
            if len(self._buf) > 16384:
                raise HandshakeError("upgrade response headers too long")
            return False
        head = bytes(self._buf[:end]).decode("latin-1").split("\r\n")
        del self._buf[: end + 4]
        status = head[0].split(" ", 2)
        if len(status) < 2 or status[1] != "101":
            raise HandshakeError(f"upgrade answered {head[0]!r}")
        headers = {}
        for line in head[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        expect = base64.b64encode(hashlib.sha1(self._key + _GUID, usedforsecurity=False).digest()).decode()
        if headers.get("sec-websocket-accept") != expect:
            raise HandshakeError("wrong Sec-WebSocket-Accept")
        self._upgraded = True
        self.opened.set_result(None)
        return True

    def _read_frames(self) -> None:
        buf = self._buf
        pos, size = 0, len(buf)
        while size - pos >= 2:
            b0, b1 = buf[pos], buf[pos + 1]
            if b1 & 0x80:
                raise ConnectionError("the server masked a frame")
            length, head = b1 & 0x7F, 2
            if length == 126:
                if size - pos < 4:
                    break
                (length,), head = struct.unpack_from("!H", buf, pos + 2), 4
            elif length == 127:
                if size - pos < 10:
                    break
                (length,), head = struct.unpack_from("!Q", buf, pos + 2), 10
            if length > self.max_size:
                raise ConnectionError(f"frame of {length} bytes exceeds {self.max_size}")
            end = pos + head + length
            if end > size:
                break
            payload = bytes(buf[pos + head : end])
            pos = end
            self._on_frame(b0 & 0x80, b0 & 0x0F, payload)
            if self.transport is None or self.transport.is_closing():
                break
        del buf[:pos]

    def _on_frame(self, fin: int, opcode: int, payload: bytes) -> None:
        if opcode in (_TEXT, _BINARY):
            if fin:
                if opcode == _TEXT:
                    self.on_text(self, payload.decode())
                return
            self._fragments, self._fragment_opcode = [payload], opcode
        elif opcode == _CONTINUATION:
            if self._fragments is None:
                raise ConnectionError("continuation frame without a first fragment")
            self._fragments.append(payload)
            if fin:
                whole, self._fragments = b"".join(self._fragments), None
                if self._fragment_opcode == _TEXT:
                    self.on_text(self, whole.decode())
        elif opcode == _PING:
            if self.transport is not None and not self.transport.is_closing():
                self.transport.write(frame(_PONG, payload))
        elif opcode == _CLOSE:
            if self.transport is not None and not self.transport.is_closing():
                self.transport.write(frame(_CLOSE, payload[:2]))
                self.transport.close()
        elif opcode != _PONG:
            raise ConnectionError(f"unknown opcode {opcode}")


async def open_socket(
    url: str, on_text: Callable[[LeanSocket, str], None], open_timeout: float = 120.0, **kw: Any
) -> LeanSocket:
    """Connect and upgrade; raises OSError, TimeoutError or HandshakeError."""
    loop = asyncio.get_running_loop()
    host, port = LeanSocket.address(url)
    _, sock = await asyncio.wait_for(
        loop.create_connection(lambda: LeanSocket(url, on_text, **kw), host, port), open_timeout
    )
    try:
        await asyncio.wait_for(asyncio.shield(sock.opened), open_timeout)
    except BaseException:
        sock.abort()
        raise
    return sock
