"""The one place that talks HTTP to providers: a shared aiohttp session per event loop.

Transport failures become UpstreamError subclasses (retryable), with messages that never carry
credentials or full URLs with keys.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp

from apps.core.conf import conf
from apps.core.errors import UpstreamError, UpstreamTimeout, UpstreamUnavailable
from apps.providers.schemas import UpstreamRequest

logger = logging.getLogger(__name__)

_sessions: dict[asyncio.AbstractEventLoop, aiohttp.ClientSession] = {}


def session() -> aiohttp.ClientSession:
    loop = asyncio.get_running_loop()
    current = _sessions.get(loop)
    if current is None or current.closed:
        for other in [lp for lp in _sessions if lp.is_closed()]:
            _sessions.pop(other, None)
        connector = aiohttp.TCPConnector(
            limit=0,  # no global cap: concurrency is the clients' to choose
            limit_per_host=0,
            ttl_dns_cache=300,
            keepalive_timeout=60,
            enable_cleanup_closed=True,
        )
        current = aiohttp.ClientSession(
            connector=connector,
            auto_decompress=True,
            raise_for_status=False,
            skip_auto_headers=("User-Agent",),
            json_serialize=None,  # type: ignore[arg-type]
        )
        _sessions[loop] = current
    return current


async def close_sessions() -> None:
    loop = asyncio.get_running_loop()
    current = _sessions.pop(loop, None)
    if current is not None and not current.closed:
        await current.close()


@dataclass(slots=True)
class UpstreamResponse:
    status: int
    headers: dict[str, str]
    body: bytes


def _timeout(total: float, stream: bool) -> aiohttp.ClientTimeout:
    connect = conf.GATEWAY_CONNECT_TIMEOUT_S
    if stream:
        # Between chunks rather than for the whole stream.
        return aiohttp.ClientTimeout(total=None, sock_connect=connect, sock_read=total)
    return aiohttp.ClientTimeout(total=total, sock_connect=connect)


def _host(url: str) -> str:
    with contextlib.suppress(Exception):
        return aiohttp.client.URL(url).host or "upstream"
    return "upstream"


def transport_error(exc: BaseException, provider: str, url: str) -> Exception:
    host = _host(url)
    if isinstance(exc, asyncio.TimeoutError | TimeoutError):
        return UpstreamTimeout(f"{provider} error: request to {host} timed out.")
    if isinstance(exc, aiohttp.ClientConnectorError):
        return UpstreamUnavailable(f"{provider} error: cannot connect to {host}.")
    if isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError):
        return UpstreamUnavailable(f"{provider} error: {host} closed the connection early.")
    return UpstreamUnavailable(
        f"{provider} error: request to {host} failed ({type(exc).__name__})."
    )


async def send(req: UpstreamRequest, *, timeout_s: float, provider: str) -> UpstreamResponse:
    """Send and read the whole response. Raises UpstreamTimeout / UpstreamUnavailable."""
    try:
        async with session().request(
            req.method,
            req.url,
            data=req.body,
            headers=req.headers,
            timeout=_timeout(timeout_s, False),
        ) as resp:
            body = await resp.read()
            return UpstreamResponse(resp.status, dict(resp.headers), body)
    except (TimeoutError, aiohttp.ClientError) as exc:
        raise transport_error(exc, provider, req.url) from None


class UpstreamStream:
    """An open streaming response: ``status``/``headers`` now, body chunks as they arrive."""

    def __init__(self, resp: aiohttp.ClientResponse, provider: str, url: str) -> None:
        self._resp = resp
        self._provider = provider
        self._url = url
        self.status = resp.status
        self.headers = dict(resp.headers)
        self.complete = False

    async def read_all(self) -> bytes:
        try:
            body = await self._resp.read()
            self.complete = True
            return body
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise transport_error(exc, self._provider, self._url) from None

    async def drain(self) -> None:
        """Read what is left of a body whose answer is complete (usually only the chunked
        terminator, already buffered), so the connection goes back to the pool. A failure
        here costs only the connection: the client already has everything."""
        with contextlib.suppress(UpstreamError):
            async for _ in self.chunks():
                pass

    async def chunks(self) -> AsyncIterator[bytes]:
        content = self._resp.content
        try:
            while True:
                data = await content.readany()
                if not data:
                    self.complete = True
                    return
                yield data
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise transport_error(exc, self._provider, self._url) from None


@contextlib.asynccontextmanager
async def open_stream(
    req: UpstreamRequest, *, timeout_s: float, provider: str
) -> AsyncIterator[UpstreamStream]:
    """Open a streaming request; leaving the block (or cancellation) closes the connection."""
    try:
        resp = await session().request(
            req.method,
            req.url,
            data=req.body,
            headers=req.headers,
            timeout=_timeout(timeout_s, True),
        )
    except (TimeoutError, aiohttp.ClientError) as exc:
        raise transport_error(exc, provider, req.url) from None
    stream = UpstreamStream(resp, provider, req.url)
    try:
        yield stream
    finally:
        # A fully read response gives its connection back to the pool; an abandoned one
        # (client gone, error) is closed so the upstream stops generating.
        if stream.complete:
            resp.release()
        else:
            resp.close()
