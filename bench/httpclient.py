"""A minimal HTTP/1.1 keep-alive client for the load generators, on an asyncio protocol.

``httpx`` spends on the order of a millisecond of CPU per request building and parsing it; on the
two cores that the server under test shares with its load generator that is a sizeable part of
what the benchmark measures. This client writes a request prepared as bytes and parses the one
answer it waits for in ``data_received``: a status line, headers and a ``Content-Length`` body
(what uvicorn sends for eqian's JSON answers). One request at a time per connection; anything it
does not understand (a chunked body) fails that request with ``BadResponse``.
"""

from __future__ import annotations

import asyncio


class BadResponse(Exception):
    pass


class HttpConnection(asyncio.Protocol):
    def __init__(self, host: str, port: int) -> None:
        self.host_header = f"{host}:{port}".encode()
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None
        self.waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buf += data
        end = self.buf.find(b"\r\n\r\n")
        if end < 0 or self.waiter is None or self.waiter.done():
            return
        head = bytes(self.buf[:end]).split(b"\r\n")
        length: int | None = None
        for line in head[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                self.waiter.set_exception(BadResponse("chunked answers are not supported"))
                return
        if length is None:
            self.waiter.set_exception(BadResponse("answer without Content-Length"))
            return
        if len(self.buf) < end + 4 + length:
            return
        body = bytes(self.buf[end + 4 : end + 4 + length])
        del self.buf[: end + 4 + length]
        try:
            status = int(head[0].split(b" ", 2)[1])
        except (IndexError, ValueError):
            self.waiter.set_exception(BadResponse(f"bad status line {head[0][:60]!r}"))
            return
        self.waiter.set_result((status, body))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("connection closed before the answer"))

    async def request(
        self, method: str, path: str, headers: dict[str, str], body: bytes = b""
    ) -> tuple[int, bytes]:
        """(status, body) of one request on this connection."""
        if self.closed or self.transport is None:
            raise ConnectionError("connection closed")
        lines = [f"{method} {path} HTTP/1.1".encode(), b"Host: " + self.host_header]
        lines += [f"{k}: {v}".encode() for k, v in headers.items()]
        lines.append(f"Content-Length: {len(body)}".encode())
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(b"\r\n".join(lines) + b"\r\n\r\n" + body)
        return await self.waiter

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def connect(host: str, port: int) -> HttpConnection:
    loop = asyncio.get_running_loop()
    _, protocol = await loop.create_connection(lambda: HttpConnection(host, port), host, port)
    return protocol
