"""A lean HTTP/1.1 client for upstream calls: asyncio protocols, httptools' C parser, and a
keep-alive pool per event loop.

Why not aiohttp: on this path the client is most of the gateway's own cost. Measured on one core
against the bench's fake upstream, aiohttp spends 190-260 us of CPU per request and adds ~0.4 ms
to a stream's first byte over a protocol-level client (aiosonic was no faster); see
``bench/README.md``. This module does only what an upstream call needs: one request at a time
per connection, ``Content-Length`` request bodies, chunked / sized / read-until-close response
bodies, gzip and deflate, TLS with the system's trust store, back-pressure on the socket when the
reader is slower than the upstream, and outbound proxies from the environment (``proxy``).

Errors: ``ConnectFailed`` (nothing was sent), ``Disconnected`` (the connection ended before
the response did), ``MalformedResponse``, ``InvalidRequest`` (a header that would break the
request line framing), and ``TimeoutError`` from the caller's deadlines. Messages name the host
at most, never the path or query (which may carry a key).
"""

from apps.gateway.h1.connection import HIGH_WATER, Response
from apps.gateway.h1.errors import (
    ConnectFailed,
    Disconnected,
    H1Error,
    InvalidRequest,
    MalformedResponse,
)
from apps.gateway.h1.pool import Pool, reset_tls_context, tls_context
from apps.gateway.h1.proxy import NO_PROXIES, Proxy, ProxySettings, parse_proxy
from apps.gateway.h1.wire import host_of

__all__ = [
    "HIGH_WATER",
    "NO_PROXIES",
    "ConnectFailed",
    "Disconnected",
    "H1Error",
    "InvalidRequest",
    "MalformedResponse",
    "Pool",
    "Proxy",
    "ProxySettings",
    "Response",
    "host_of",
    "parse_proxy",
    "reset_tls_context",
    "tls_context",
]
