"""One upstream connection (an asyncio Protocol fed to httptools' parser) and the response read
from it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import httptools

from apps.gateway.h1.errors import ConnectFailed, Disconnected, H1Error, MalformedResponse
from apps.gateway.h1.wire import Origin, decoder_for

if TYPE_CHECKING:
    from apps.gateway.h1.pool import Pool

# Bytes buffered for a reader before the socket stops being read; reading resumes when the
# reader takes them.
HIGH_WATER = 512 * 1024
# A response head larger than this is refused (an upstream cannot make the gateway buffer
# headers without end); real ones are a few KiB.
MAX_HEAD_BYTES = 64 * 1024


class _Connection(asyncio.Protocol):
    """One upstream connection, carrying one exchange at a time."""

    def __init__(self, pool: Pool, origin: Origin) -> None:
        self.pool = pool
        self.origin = origin
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.idle_since = 0.0
        self.active = False
        # While a proxy's CONNECT answer is awaited: its status, and the bytes so far.
        self.tunnel: asyncio.Future[int] | None = None
        self.tunnel_head = b""
        self._reset()

    def _reset(self) -> None:
        self.status = 0
        self.raw_headers: list[tuple[bytes, bytes]] = []
        self.head_bytes = 0
        self.head_done = False
        self.done = False
        self.keep_alive = False
        self.until_close = False
        self.received = False
        self.error: H1Error | None = None
        self.chunks: list[bytes] = []
        self.buffered = 0
        self.paused = False
        self.waiter: asyncio.Future[None] | None = None

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self.tunnel is not None:
            self._tunnel_data(data)
            return
        if not self.active:  # nothing asked: a server's parting message on an idle connection
            self._close()
            return
        self.received = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            cause = exc.__context__
            self.error = (
                cause
                if isinstance(cause, MalformedResponse)
                else MalformedResponse("sent a malformed response", self.origin[1])
            )
            self._close()
        self._wake()

    def eof_received(self) -> bool:
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.tunnel is not None and not self.tunnel.done():
            self.tunnel.set_exception(
                ConnectFailed("the proxy closed the connection", self.origin[1])
            )
        if not self.done:
            if self.head_done and self.until_close:
                self.done = True
                self.keep_alive = False
            elif self.error is None:
                self.error = Disconnected("closed the connection early", self.origin[1])
        self.pool.forget(self)
        self._wake()

    def _tunnel_data(self, data: bytes) -> None:
        """The proxy's answer to CONNECT: a status line and headers, then the tunnel."""
        assert self.tunnel is not None
        head = self.tunnel_head = self.tunnel_head + data
        end = head.find(b"\r\n\r\n")
        if end < 0:
            if len(head) > MAX_HEAD_BYTES:
                self.tunnel.set_exception(
                    ConnectFailed("the proxy sent a head over 64 KiB", self.origin[1])
                )
                self.tunnel = None
            return
        fields = head[: head.find(b"\r\n")].split(b" ", 2)
        waiter, self.tunnel, self.tunnel_head = self.tunnel, None, b""
        if waiter.done():
            return
        if len(fields) < 2 or not fields[0].startswith(b"HTTP/") or not fields[1].isdigit():
            waiter.set_exception(ConnectFailed("the proxy sent a malformed answer", self.origin[1]))
        elif end + 4 != len(head):  # nothing may come before the TLS handshake
            waiter.set_exception(ConnectFailed("the proxy sent data early", self.origin[1]))
        else:
            waiter.set_result(int(fields[1]))

    # httptools callbacks

    def on_header(self, name: bytes, value: bytes) -> None:
        self.head_bytes += len(name) + len(value) + 4
        if self.head_bytes > MAX_HEAD_BYTES:
            raise MalformedResponse("sent a response head over 64 KiB", self.origin[1])
        self.raw_headers.append((name, value))

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        if 100 <= status < 200:  # informational: the real head follows
            self.raw_headers = []
            self.head_bytes = 0
            return
        self.status = status
        self.head_done = True
        if status not in (204, 304):
            sized = any(
                n.lower() in (b"content-length", b"transfer-encoding") for n, _ in self.raw_headers
            )
            self.until_close = not sized

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)
        self.buffered += len(body)
        if self.buffered > HIGH_WATER and not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()

    def on_message_complete(self) -> None:
        if self.head_done:
            self.done = True
            self.keep_alive = self.parser.should_keep_alive()

    # used by Response

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def wait(self, deadline: float | None) -> None:
        """Until more arrives, the response ends or fails; TimeoutError past ``deadline``."""
        waiter = self.waiter = self.pool.loop.create_future()
        try:
            if deadline is None:
                await waiter
            else:
                async with asyncio.timeout_at(deadline):
                    await waiter
        finally:
            self.waiter = None

    def take(self) -> bytes:
        chunks = self.chunks
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        self.chunks = []
        self.buffered = 0
        if self.paused and self.transport is not None:
            self.paused = False
            self.transport.resume_reading()
        return data

    def _close(self) -> None:
        if self.transport is not None:
            self.transport.close()
        self.closed = True


class Response:
    """A response whose head has arrived; the body is read with ``read`` or ``chunks``.
    ``release`` (complete) or ``close`` (abandoned) must follow."""

    __slots__ = ("_conn", "_decoder", "_released", "headers", "status")

    def __init__(self, conn: _Connection) -> None:
        self._conn = conn
        self.status = conn.status
        headers: dict[str, str] = {}
        for raw_name, raw_value in conn.raw_headers:
            name = raw_name.decode("latin-1").lower()
            value = raw_value.decode("latin-1")
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        self.headers = headers
        self._decoder = decoder_for(headers.get("content-encoding"), conn.origin[1])
        self._released = False

    @property
    def complete(self) -> bool:
        conn = self._conn
        return conn.done and not conn.chunks

    async def chunks(self, read_timeout: float | None) -> AsyncIterator[bytes]:
        """Body bytes as they arrive (whatever is buffered, joined); each wait for more
        is bounded by ``read_timeout`` seconds."""
        conn = self._conn
        loop = conn.pool.loop
        decoder = self._decoder
        while True:
            if conn.chunks:
                data = conn.take()
                if decoder is not None:
                    data = decoder.decompress(data)
                    if not data:
                        continue
                yield data
                continue
            if conn.done:
                if decoder is not None:
                    tail = decoder.flush()
                    self._decoder = decoder = None
                    if tail:
                        yield tail
                return
            if conn.error is not None:
                raise conn.error
            await conn.wait(None if read_timeout is None else loop.time() + read_timeout)

    async def read(self, deadline: float | None) -> bytes:
        """The whole body, by ``deadline`` (loop time)."""
        conn = self._conn
        parts = []
        while True:
            if conn.chunks:
                parts.append(conn.take())  # taking resumes a paused socket
            if conn.done:
                break
            if conn.error is not None:
                raise conn.error
            await conn.wait(deadline)
        data = parts[0] if len(parts) == 1 else b"".join(parts)
        if self._decoder is not None:
            data = self._decoder.decompress(data) + self._decoder.flush()
            self._decoder = None
        return data

    def release(self) -> None:
        """Give the connection back to the pool when the exchange is complete and the
        upstream keeps it open; close it otherwise (an unread body, an abandoned stream)."""
        if self._released:
            return
        self._released = True
        conn = self._conn
        conn.active = False
        if conn.done and conn.keep_alive and not conn.closed and not conn.chunks:
            conn.pool.put(conn)
        else:
            conn._close()

    def close(self) -> None:
        if not self._released:
            self._released = True
            self._conn._close()
