"""aiohttp's exceptions as the gateway's typed transport errors (``apps.core.errors``).

The distinction that matters to the router is whether the upstream may have read the request:
a failed connect, TLS handshake or proxy tunnel never sent it (safe to retry); a connection that
ends or a response that cannot be read after the request went out may have started a billed
generation (never replayed silently). Messages name the host at most, never the path or query
(which may carry a key).
"""

from __future__ import annotations

import asyncio

import aiohttp
from yarl import URL

from apps.core.errors import (
    UpstreamConnectFailed,
    UpstreamConnectTimeout,
    UpstreamDisconnected,
    UpstreamError,
    UpstreamProtocolError,
    UpstreamTimeout,
    UpstreamTLSError,
    UpstreamUnavailable,
)

# What a transport failure can raise; anything else is a bug and propagates.
FAILURES = (aiohttp.ClientError, TimeoutError, OSError, ValueError)


def host_of(url: str | URL) -> str:
    try:
        parsed = url if isinstance(url, URL) else URL(url)
        return parsed.host or "upstream"
    except (ValueError, TypeError):
        return "upstream"


def _reason(exc: aiohttp.ClientResponseError) -> str:
    """The parser's complaint without the bytes it quotes (they may be anything)."""
    message = str(exc.message or "").split(":", 1)[0].split("\n", 1)[0].strip()
    return message[:120] or "malformed response"


def transport_error(exc: BaseException, provider: str, url: str | URL) -> UpstreamError:
    host = host_of(url)
    prefix = f"{provider} error:"
    if isinstance(exc, aiohttp.ClientHttpProxyError):
        return UpstreamConnectFailed(
            f"{prefix} the outbound proxy refused the tunnel to {host} (HTTP {exc.status})."
        )
    if isinstance(exc, aiohttp.ClientSSLError):
        return UpstreamTLSError(f"{prefix} TLS handshake with {host} failed ({_tls_reason(exc)}).")
    if isinstance(exc, aiohttp.ClientProxyConnectionError):
        return UpstreamConnectFailed(f"{prefix} cannot connect to the outbound proxy for {host}.")
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return UpstreamConnectFailed(f"{prefix} cannot resolve {host}.")
    if isinstance(exc, aiohttp.ClientConnectorError):
        return UpstreamConnectFailed(f"{prefix} cannot connect to {host}.")
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return UpstreamConnectTimeout(f"{prefix} connecting to {host} timed out.")
    if isinstance(exc, asyncio.TimeoutError | TimeoutError):
        return UpstreamTimeout(f"{prefix} request to {host} timed out.")
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return UpstreamDisconnected(f"{prefix} {host} closed the connection before answering.")
    if isinstance(exc, aiohttp.ClientPayloadError):
        return UpstreamDisconnected(f"{prefix} {host} ended the response early.")
    if isinstance(exc, aiohttp.ClientResponseError):
        return UpstreamProtocolError(f"{prefix} {host} sent an invalid response ({_reason(exc)}).")
    if isinstance(exc, aiohttp.InvalidURL | aiohttp.NonHttpUrlClientError):
        return UpstreamConnectFailed(f"{prefix} the upstream URL is not a valid http(s) URL.")
    if isinstance(exc, ValueError):  # a header aiohttp refuses to write (line break...)
        return UpstreamConnectFailed(
            f"{prefix} request to {host} not sent: a header name or value is not allowed."
        )
    if isinstance(exc, aiohttp.ClientOSError | ConnectionError):
        return UpstreamDisconnected(f"{prefix} the connection to {host} failed mid-request.")
    return UpstreamUnavailable(f"{prefix} request to {host} failed ({type(exc).__name__}).")


def _tls_reason(exc: aiohttp.ClientSSLError) -> str:
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        verify = getattr(exc.certificate_error, "verify_message", None)
        return str(verify or "certificate not trusted")
    return "handshake error"
