"""Keep-alive connections per origin on one event loop, TLS and cached name resolution."""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from collections.abc import Mapping
from typing import Any

from apps.gateway.h1.connection import Response, _Connection
from apps.gateway.h1.errors import ConnectFailed, Disconnected
from apps.gateway.h1.proxy import Proxy, ProxySettings
from apps.gateway.h1.wire import Origin, request_head, target

KEEPALIVE_S = 60.0  # an idle connection older than this is closed, not reused
MAX_IDLE_PER_ORIGIN = 512
DNS_TTL_S = 300.0


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
    """Keep-alive connections per origin on one event loop. ``proxies`` default to the
    environment's (``HTTPS_PROXY``, ``HTTP_PROXY``, ``NO_PROXY``)."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, proxies: ProxySettings | None = None
    ) -> None:
        self.loop = loop
        self.proxies = proxies if proxies is not None else ProxySettings.from_environment()
        self._routes: dict[Origin, Proxy | None] = {}
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
        by a new one once (not by another idle one, likely stale too); nothing was processed
        on it."""
        origin = target(url)[0]
        proxy = self._route(origin)
        if proxy is not None and origin[0] == "http":  # a forwarding proxy
            head = request_head(
                method,
                url,
                headers,
                len(body),
                proxy_authorization=proxy.authorization,
                absolute=True,
            )
        else:
            head = request_head(method, url, headers, len(body))
        payload = head + body if len(body) < 65536 else None
        for attempt in range(2):
            conn = self._idle_connection(origin) if attempt == 0 else None
            reused = conn is not None
            if conn is None:
                conn = await self._connect(origin, connect_timeout)
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

    def _route(self, origin: Origin) -> Proxy | None:
        try:
            return self._routes[origin]
        except KeyError:
            proxy = self._routes[origin] = self.proxies.for_origin(origin)
            return proxy

    async def _connect(self, origin: Origin, timeout: float) -> _Connection:
        """A new connection to ``origin``: direct, through a forwarding proxy (http), or
        through a proxy's CONNECT tunnel with TLS to the upstream inside (https)."""
        proxy = self._route(origin)
        via = proxy.origin if proxy is not None else origin
        host = via[1]
        try:
            async with asyncio.timeout(timeout):
                conn = await self._open(via, origin)
                if proxy is not None and origin[0] == "https":
                    await self._tunnel(conn, origin, proxy)
                return conn
        except TimeoutError:
            self._dns.pop((host, via[2]), None)
            raise ConnectFailed("connect timed out", host) from None
        except OSError as exc:  # name resolution, or the TLS handshake inside a tunnel
            raise ConnectFailed(f"cannot connect ({type(exc).__name__})", host) from None

    async def _open(self, via: Origin, origin: Origin) -> _Connection:
        """A socket to ``via`` (the upstream, or the proxy), TLS when ``via`` is https."""
        scheme, host, port = via
        tls = tls_context() if scheme == "https" else None
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
            except OSError as exc:  # ssl.SSLError included
                last = exc
        self._dns.pop((host, port), None)  # resolve again next time
        raise ConnectFailed(f"cannot connect ({type(last).__name__})", host)

    async def _tunnel(self, conn: _Connection, origin: Origin, proxy: Proxy) -> None:
        """CONNECT through the proxy, then TLS with the upstream over the tunnel."""
        _, host, port = origin
        authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        lines = [f"CONNECT {authority} HTTP/1.1", f"Host: {authority}"]
        if proxy.authorization:
            lines.append(f"Proxy-Authorization: {proxy.authorization}")
        transport = conn.transport
        assert transport is not None
        conn.tunnel = self.loop.create_future()
        try:
            transport.write(("\r\n".join(lines) + "\r\n\r\n").encode())
            status = await conn.tunnel
            if not 200 <= status < 300:
                raise ConnectFailed(f"the proxy refused the tunnel ({status})", proxy.host)
            tls = await self.loop.start_tls(transport, conn, tls_context(), server_hostname=host)
        except BaseException:
            conn._close()
            raise
        if tls is None:  # pragma: no cover - only when the transport closed meanwhile
            raise ConnectFailed("the proxy closed the connection", proxy.host)
        conn.transport = tls

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
