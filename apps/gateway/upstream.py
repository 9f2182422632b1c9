"""The one place that talks HTTP to providers: a keep-alive pool per event loop (``h1``).

Transport failures become UpstreamError subclasses (retryable), with messages that never carry
credentials or full URLs with keys.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from apps.core.conf import conf
from apps.core.errors import UpstreamError, UpstreamTimeout, UpstreamUnavailable
from apps.gateway import h1
from apps.providers.schemas import UpstreamRequest

_pools: dict[asyncio.AbstractEventLoop, h1.Pool] = {}


def pool() -> h1.Pool:
    loop = asyncio.get_running_loop()
    current = _pools.get(loop)
    if current is None or current.closed:
        for other in [lp for lp in _pools if lp.is_closed()]:
            _pools.pop(other, None)
        current = _pools[loop] = h1.Pool(loop)
    return current


def configuration_error() -> str | None:
    """What is wrong with the upstream settings read from the environment (the proxy
    variables), or None; checked at start so a bad value is reported before the first call."""
    try:
        h1.ProxySettings.from_environment()
    except h1.InvalidRequest as exc:
        return str(exc)
    return None


async def close_pool() -> None:
    """Close this loop's idle upstream connections (at shutdown)."""
    current = _pools.pop(asyncio.get_running_loop(), None)
    if current is not None:
        current.close()


@dataclass(slots=True)
class UpstreamResponse:
    status: int
    headers: dict[str, str]
    body: bytes


def transport_error(exc: BaseException, provider: str, url: str) -> Exception:
    host = exc.host if isinstance(exc, h1.H1Error) else h1.host_of(url)
    if isinstance(exc, asyncio.TimeoutError | TimeoutError):
        return UpstreamTimeout(f"{provider} error: request to {host} timed out.")
    if isinstance(exc, h1.ConnectFailed):
        return UpstreamUnavailable(f"{provider} error: cannot connect to {host}.")
    if isinstance(exc, h1.Disconnected):
        return UpstreamUnavailable(f"{provider} error: {host} closed the connection early.")
    if isinstance(exc, h1.H1Error):
        return UpstreamUnavailable(f"{provider} error: {host} {exc}.")
    return UpstreamUnavailable(
        f"{provider} error: request to {host} failed ({type(exc).__name__})."
    )


# What a transport failure can raise; anything else is a bug and propagates.
_FAILURES = (TimeoutError, h1.H1Error, OSError)


async def _open(req: UpstreamRequest, deadline: float | None, provider: str) -> h1.Response:
    body = req.body or b""
    try:
        return await pool().request(
            req.method,
            req.url,
            req.headers,
            body,
            connect_timeout=conf.GATEWAY_CONNECT_TIMEOUT_S,
            head_deadline=deadline,
        )
    except h1.InvalidRequest as exc:
        raise UpstreamUnavailable(
            f"{provider} error: request to {h1.host_of(req.url)} not sent: {exc}."
        ) from None


async def send(req: UpstreamRequest, *, timeout_s: float, provider: str) -> UpstreamResponse:
    """Send and read the whole response within ``timeout_s``.
    Raises UpstreamTimeout / UpstreamUnavailable."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    try:
        resp = await _open(req, deadline, provider)
        try:
            body = await resp.read(deadline)
        finally:
            resp.release()  # pooled when the body was read to its end, closed otherwise
        return UpstreamResponse(resp.status, resp.headers, body)
    except _FAILURES as exc:
        raise transport_error(exc, provider, req.url) from None


class UpstreamStream:
    """An open streaming response: ``status``/``headers`` now, body chunks as they arrive,
    each wait for more bounded by the read timeout."""

    def __init__(self, resp: h1.Response, provider: str, url: str, read_timeout: float) -> None:
        self._resp = resp
        self._provider = provider
        self._url = url
        self._read_timeout = read_timeout
        self.status = resp.status
        self.headers = resp.headers

    async def read_all(self) -> bytes:
        deadline = asyncio.get_running_loop().time() + self._read_timeout
        try:
            return await self._resp.read(deadline)
        except _FAILURES as exc:
            raise transport_error(exc, self._provider, self._url) from None

    async def drain(self) -> None:
        """Read what is left of a body whose answer is complete (usually only the chunked
        terminator, already buffered), so the connection goes back to the pool. A failure
        here costs only the connection: the client already has everything."""
        with contextlib.suppress(UpstreamError):
            async for _ in self.chunks():
                pass

    async def chunks(self) -> AsyncIterator[bytes]:
        try:
            async for data in self._resp.chunks(self._read_timeout):
                yield data
        except _FAILURES as exc:
            raise transport_error(exc, self._provider, self._url) from None


@contextlib.asynccontextmanager
async def open_stream(
    req: UpstreamRequest, *, timeout_s: float, provider: str
) -> AsyncIterator[UpstreamStream]:
    """Open a streaming request (the head due within ``timeout_s``, then each read within
    ``timeout_s`` of the last); leaving the block (or cancellation) closes the connection
    unless the body was read to its end."""
    try:
        resp = await _open(req, asyncio.get_running_loop().time() + timeout_s, provider)
    except _FAILURES as exc:
        raise transport_error(exc, provider, req.url) from None
    stream = UpstreamStream(resp, provider, req.url, timeout_s)
    try:
        yield stream
    finally:
        # A complete exchange gives its connection back to the pool; an abandoned one
        # (client gone, error mid-body) is closed so the upstream stops generating.
        resp.release()
