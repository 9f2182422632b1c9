"""A lean HTTP/1.1 client for upstream calls: asyncio protocols, httptools' C parser, and a
keep-alive pool per event loop.

Why not aiohttp: on this path the client is most of the gateway's own cost. Measured on one core
against the bench's fake upstream, aiohttp spends 190-260 us of CPU per request and adds ~0.4 ms
to a stream's first byte over a protocol-level client (aiosonic was no faster); see
``bench/README.md``. This module does only what an upstream call needs: one request at a time
per connection, ``Content-Length`` request bodies, chunked / sized / read-until-close response
bodies, gzip and deflate, TLS with the system's trust store, and back-pressure on the socket
when the reader is slower than the upstream.

Errors: ``ConnectFailed`` (nothing was sent), ``Disconnected`` (the connection ended before
the response did), ``MalformedResponse``, ``InvalidRequest`` (a header that would break the
request line framing), and ``TimeoutError`` from the caller's deadlines. Messages name the host
at most, never the path or query (which may carry a key).
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
import zlib
from collections.abc import AsyncIterator, Mapping
from functools import lru_cache
from typing import Any
from urllib.parse import quote, urlsplit

import httptools

# Bytes buffered for a reader before the socket stops being read, and the level at which
# reading resumes.
HIGH_WATER = 512 * 1024
LOW_WATER = 128 * 1024
KEEPALIVE_S = 60.0  # an idle connection older than this is closed, not reused
MAX_IDLE_PER_ORIGIN = 512
DNS_TTL_S = 300.0


class H1Error(Exception):
    """A transport failure talking to ``host``."""

    def __init__(self, message: str, host: str) -> None:
        super().__init__(message)
        self.host = host


class ConnectFailed(H1Error):
    pass


class Disconnected(H1Error):
    pass


class MalformedResponse(H1Error):
    pass


class InvalidRequest(ValueError):
    pass


Origin = tuple[str, str, int]  # scheme, host, port


@lru_cache(maxsize=4096)
def _target(url: str) -> tuple[Origin, bytes, bytes]:
    """(origin, the request line's tail, the Host header line) for ``url``, worked out once."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise InvalidRequest("upstream URL must be http:// or https:// with a host")
    default = 443 if scheme == "https" else 80
    port = parts.port or default
    host = parts.hostname
    # Keep existing %XX escapes; escape what may not appear raw in a request target.
    path = quote(parts.path or "/", safe="/%:@!$&'()*+,;=-._~")
    if parts.query:
        path += "?" + quote(parts.query, safe="/%:@!$&'()*+,;=-._~?")
    netloc = f"[{host}]" if ":" in host else host
    if port != default:
        netloc += f":{port}"
    return (
        (scheme, host, port),
        f" {path} HTTP/1.1\r\n".encode("ascii"),
        f"Host: {netloc}\r\n".encode("ascii"),
    )


def host_of(url: str) -> str:
    try:
        return _target(url)[0][1]
    except ValueError:  # InvalidRequest, or a port out of range
        return "upstream"


# The body is framed here (Content-Length); framing headers given by a caller are dropped.
_FRAMING = frozenset({"content-length", "transfer-encoding"})


def _head(method: str, url: str, headers: Mapping[str, str], length: int) -> tuple[Origin, bytes]:
    origin, line, host = _target(url)
    lines = []
    for name, value in headers.items():
        lowered = name.lower()
        if lowered in _FRAMING:
            continue
        if lowered == "host":
            host = b""  # the caller's Host wins (it may be signed)
        lines.append(f"{name}: {value}\r\n")
    text = "".join(lines)
    # Each header adds exactly one CR and one LF; any other would split or smuggle a header.
    count = len(lines)
    if text.count("\n") != count or text.count("\r") != count or "\x00" in text:
        raise InvalidRequest("a request header contains a line break")
    return origin, b"".join(
        (
            method.encode("ascii"),
            line,
            host,
            text.encode("utf-8"),
            b"Content-Length: %d\r\n\r\n" % length,
        )
    )


class _Connection(asyncio.Protocol):
    """One upstream connection, carrying one exchange at a time."""

    def __init__(self, pool: Pool, origin: Origin) -> None:
        self.pool = pool
        self.origin = origin
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.idle_since = 0.0
        self.used = 0
        self.active = False
        self._reset()

    def _reset(self) -> None:
        self.status = 0
        self.raw_headers: list[tuple[bytes, bytes]] = []
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
        if not self.active:  # nothing asked: a server's parting message on an idle connection
            self._close()
            return
        self.received = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.error = MalformedResponse("sent a malformed response", self.origin[1])
            self._close()
        self._wake()

    def eof_received(self) -> bool:
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.done:
            if self.head_done and self.until_close:
                self.done = True
                self.keep_alive = False
            elif self.error is None:
                self.error = Disconnected("closed the connection early", self.origin[1])
        self.pool.forget(self)
        self._wake()

    def pause_writing(self) -> None:  # request bodies are written whole; nothing to pause
        pass

    def resume_writing(self) -> None:
        pass

    # httptools callbacks

    def on_header(self, name: bytes, value: bytes) -> None:
        self.raw_headers.append((name, value))

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        if 100 <= status < 200:  # informational: the real head follows
            self.raw_headers = []
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
        self._decoder = _decoder(headers.get("content-encoding"), conn.origin[1])
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


class _Inflate:
    __slots__ = ("_first", "_host", "_obj")

    def __init__(self, wbits: int, host: str) -> None:
        self._obj = zlib.decompressobj(wbits)
        self._host = host
        self._first = wbits == zlib.MAX_WBITS

    def decompress(self, data: bytes) -> bytes:
        try:
            return self._obj.decompress(data)
        except zlib.error:
            if self._first:  # "deflate" sent raw, without the zlib wrapper
                self._obj = zlib.decompressobj(-zlib.MAX_WBITS)
                self._first = False
                return self.decompress(data)
            raise MalformedResponse("sent a body that does not decompress", self._host) from None
        finally:
            self._first = False

    def flush(self) -> bytes:
        return self._obj.flush()


def _decoder(encoding: str | None, host: str) -> _Inflate | None:
    """The response is never asked to be compressed; a server that compresses anyway is
    decoded for gzip and deflate, and refused for anything else."""
    if not encoding:
        return None
    value = encoding.strip().lower()
    if value in ("identity", ""):
        return None
    if value in ("gzip", "x-gzip"):
        return _Inflate(16 + zlib.MAX_WBITS, host)
    if value == "deflate":
        return _Inflate(zlib.MAX_WBITS, host)
    raise MalformedResponse(f"sent an unsupported content-encoding ({value[:40]})", host)


_tls: ssl.SSLContext | None = None


def tls_context() -> ssl.SSLContext:
    """The system's trust store (OpenSSL honours SSL_CERT_FILE / SSL_CERT_DIR)."""
    global _tls
    if _tls is None:
        _tls = ssl.create_default_context()
    return _tls


def reset_tls_context() -> None:
    global _tls
    _tls = None


class Pool:
    """Keep-alive connections per origin on one event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.idle: dict[Origin, list[_Connection]] = {}
        self.closed = False
        self._dns: dict[tuple[str, int], tuple[float, list[Any]]] = {}
        self._last_sweep = 0.0

    async def request(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes,
        *,
        connect_timeout: float,
        head_deadline: float | None,
    ) -> Response:
        """Send a request and wait for the response head. A kept-alive connection that turns
        out to be closed before any answer (the upstream timed it out just now) is replaced
        by a new one once; nothing was processed on it."""
        origin, head = _head(method, url, headers, len(body))
        payload = head + body if len(body) < 65536 else None
        for _ in range(2):
            conn = self._idle_connection(origin)
            reused = conn is not None
            if conn is None:
                conn = await self._connect(origin, connect_timeout)
            conn.used += 1
            conn.active = True
            transport = conn.transport
            assert transport is not None
            if payload is not None:
                transport.write(payload)
            else:
                transport.write(head)
                transport.write(body)
            try:
                while not conn.head_done:
                    if conn.error is not None:
                        raise conn.error
                    await conn.wait(head_deadline)
                return Response(conn)
            except Disconnected:
                if reused and not conn.received:
                    continue
                raise
            except BaseException:
                conn._close()
                raise
        raise Disconnected("closed the connection early", origin[1])

    def _idle_connection(self, origin: Origin) -> _Connection | None:
        idle = self.idle.get(origin)
        now = time.monotonic()
        while idle:
            conn = idle.pop()
            if conn.closed:
                continue
            if now - conn.idle_since > KEEPALIVE_S:
                conn._close()
                continue
            return conn
        return None

    async def _connect(self, origin: Origin, timeout: float) -> _Connection:
        scheme, host, port = origin
        tls = tls_context() if scheme == "https" else None
        try:
            async with asyncio.timeout(timeout):
                addresses = await self._resolve(host, port)
                last: Exception | None = None
                for family, _, proto, _, address in addresses:
                    try:
                        _, conn = await self.loop.create_connection(
                            lambda: _Connection(self, origin),
                            address[0],
                            address[1],
                            family=family,
                            proto=proto,
                            ssl=tls,
                            server_hostname=host if tls is not None else None,
                        )
                        return conn
                    except (OSError, ssl.SSLError) as exc:
                        last = exc
                raise ConnectFailed(f"cannot connect ({type(last).__name__})", host)
        except TimeoutError:
            raise ConnectFailed("connect timed out", host) from None
        except OSError as exc:  # name resolution
            raise ConnectFailed(f"cannot connect ({type(exc).__name__})", host) from None

    async def _resolve(self, host: str, port: int) -> list[Any]:
        key = (host, port)
        now = time.monotonic()
        cached = self._dns.get(key)
        if cached is not None and now - cached[0] < DNS_TTL_S:
            return cached[1]
        found = await self.loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        if not found:
            raise OSError("no address")
        self._dns[key] = (now, found)
        return found

    def put(self, conn: _Connection) -> None:
        if self.closed:
            conn._close()
            return
        now = time.monotonic()
        conn.idle_since = now
        conn._reset()
        idle = self.idle.setdefault(conn.origin, [])
        if len(idle) >= MAX_IDLE_PER_ORIGIN:
            conn._close()
            return
        idle.append(conn)
        if now - self._last_sweep > KEEPALIVE_S / 4:
            self._sweep(now)

    def forget(self, conn: _Connection) -> None:
        idle = self.idle.get(conn.origin)
        if idle and conn in idle:
            idle.remove(conn)

    def _sweep(self, now: float) -> None:
        self._last_sweep = now
        for idle in self.idle.values():
            for conn in [c for c in idle if now - c.idle_since > KEEPALIVE_S]:
                idle.remove(conn)
                conn._close()

    def close(self) -> None:
        self.closed = True
        for idle in self.idle.values():
            for conn in idle:
                conn._close()
        self.idle.clear()
