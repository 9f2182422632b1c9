"""The one place that talks HTTP to providers: one ``aiohttp.ClientSession`` per event loop.

HTTP parsing, TLS, Happy Eyeballs, IDNA and connection pooling are aiohttp's; this package adds
what a gateway needs on top: a per-origin connection limit with a clear 503 when it is
exhausted, a cap on non-stream answers (after decompression), no redirects (a 1xx or 3xx answer
is an upstream error), proxies from the environment, per-deployment TLS (``ssl_verify``,
``ssl_certificate``), and typed errors (``apps.core.errors``) telling the router whether the
upstream may have seen the request. aiohttp never replays a POST; neither does this package.
Error messages name the host at most, never the path or query (which may carry a key).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp
from yarl import URL

from apps.core.errors import UpstreamConnectFailed, UpstreamError, UpstreamProtocolError
from apps.gateway.upstream import tls
from apps.gateway.upstream.failures import FAILURES, host_of, transport_error
from apps.gateway.upstream.proxy import InvalidProxy, Proxies
from apps.gateway.upstream.session import Upstreams, new_upstreams
from apps.providers.schemas import Target, UpstreamRequest

__all__ = [
    "UpstreamResponse",
    "UpstreamStream",
    "close_pool",
    "configuration_error",
    "open_stream",
    "send",
    "upstreams",
]

_by_loop: dict[asyncio.AbstractEventLoop, Upstreams] = {}
_urls: dict[str, URL] = {}


def upstreams() -> Upstreams:
    """This event loop's session (made on first use, with the environment's proxies).
    Raises InvalidProxy when a proxy variable is malformed."""
    loop = asyncio.get_running_loop()
    current = _by_loop.get(loop)
    if current is None or current.session.closed:
        for other in [lp for lp in _by_loop if lp.is_closed()]:
            _by_loop.pop(other, None)
        current = _by_loop[loop] = new_upstreams(Proxies.from_environment())
    return current


def _prepare(req: UpstreamRequest, provider: str) -> tuple[URL, Upstreams]:
    try:
        url = _url(req.url)
    except (ValueError, TypeError):
        raise UpstreamConnectFailed(
            f"{provider} error: the upstream URL is not a valid http(s) URL."
        ) from None
    try:
        return url, upstreams()
    except InvalidProxy as exc:
        raise UpstreamConnectFailed(
            f"{provider} error: request to {host_of(url)} not sent: {exc}."
        ) from None


def configuration_error() -> str | None:
    """What is wrong with the upstream settings read from the environment (the proxy
    variables), or None; checked at start so a bad value is reported before the first call."""
    try:
        Proxies.from_environment()
    except InvalidProxy as exc:
        return str(exc)
    return None


async def close_pool() -> None:
    """Close this loop's session and its connections (at shutdown, or to re-read settings)."""
    current = _by_loop.pop(asyncio.get_running_loop(), None)
    if current is not None:
        await current.session.close()
    tls.reset()


# Characters left as they are in an upstream URL: the reserved set, and "%" so that the
# providers' own percent-escapes (signed paths, escaped model names) reach the wire unchanged.
_URL_SAFE = ":/?#[]@!$&'()*+,;=%~"


def _url(text: str) -> URL:
    """The URL as sent: the providers' escapes kept byte for byte (a signed path must not
    change), anything else that cannot go on the request line (a space, a control or
    non-ASCII character) percent-encoded, and an internationalised host name IDNA-encoded.
    Cached, since a deployment's URLs repeat."""
    found = _urls.get(text)
    if found is None:
        scheme, sep, rest = text.partition("://")
        netloc, slash, tail = rest.partition("/")
        if not netloc.isascii():
            netloc = URL(f"{scheme}://{netloc}").raw_authority  # IDNA, by yarl
        found = URL(f"{scheme}{sep}{netloc}{slash}{quote(tail, safe=_URL_SAFE)}", encoded=True)
        if len(_urls) > 4096:
            _urls.clear()
        _urls[text] = found
    return found


@dataclass(slots=True)
class UpstreamResponse:
    status: int
    headers: dict[str, str]  # names lower-cased, repeated fields joined with ", "
    body: bytes


def _headers(resp: aiohttp.ClientResponse) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in resp.headers.items():
        key = name.lower()
        out[key] = f"{out[key]}, {value}" if key in out else value
    return out


def _too_large(provider: str, host: str, cap: int) -> UpstreamProtocolError:
    return UpstreamProtocolError(
        f"{provider} error: the answer from {host} is larger than {cap} bytes "
        "(GATEWAY_UPSTREAM_MAX_RESPONSE_BYTES)."
    )


async def _read_capped(resp: aiohttp.ClientResponse, cap: int, provider: str) -> bytes:
    length = resp.content_length
    if length is not None and length > cap:
        raise _too_large(provider, host_of(resp.url), cap)
    if length is not None and "Content-Encoding" not in resp.headers:
        return await resp.read()  # framed by its length: cannot exceed it
    parts: list[bytes] = []
    size = 0
    content = resp.content
    while data := await content.readany():
        size += len(data)
        if size > cap:
            raise _too_large(provider, host_of(resp.url), cap)
        parts.append(data)
    return b"".join(parts)


def _not_final(resp: aiohttp.ClientResponse, provider: str) -> UpstreamError | None:
    """A 1xx or 3xx answer is never what a provider API means: redirects are not followed
    (a POST must not silently become a GET elsewhere, nor carry credentials there)."""
    status = resp.status
    if 200 <= status < 300 or status >= 400:
        return None
    what = "a redirect" if 300 <= status < 400 else "an informational answer"
    return UpstreamProtocolError(
        f"{provider} error: {host_of(resp.url)} answered with {what} (HTTP {status}); "
        "redirects are not followed, check the deployment's api_base.",
        upstream_status=status,
    )


async def _request(
    ups: Upstreams, req: UpstreamRequest, url: URL, target: Target, *, stream: bool
) -> aiohttp.ClientResponse:
    timeout_s = (target.stream_timeout_s or target.timeout_s) if stream else target.timeout_s
    extra: dict[str, Any] = {}
    ssl_setting = tls.for_params(target.params) if target.params else None
    if ssl_setting is not None:
        extra["ssl"] = ssl_setting
    headers = req.headers
    proxy = ups.proxies.for_url(url)
    if proxy is not None:
        extra["proxy"] = proxy.url
        if proxy.headers is not None:
            if url.scheme == "https":  # on the CONNECT only: the upstream never sees them
                extra["proxy_headers"] = proxy.headers
            else:  # a forwarding proxy reads them from the request itself
                headers = {**headers, **proxy.headers}
    pending = ups.session.request(
        req.method,
        url,
        data=req.body,
        headers=headers,
        timeout=ups.timeout(timeout_s, stream),
        allow_redirects=False,
        **extra,
    )
    if not stream:
        return await pending  # the whole call is due within timeout_s
    # A stream's read timeout restarts with every byte: an upstream sending its head one
    # byte at a time would hold the call forever. The head is due within timeout_s.
    async with asyncio.timeout(timeout_s):
        return await pending


async def send(
    req: UpstreamRequest, *, target: Target, timeout_s: float | None = None
) -> UpstreamResponse:
    """Send and read the whole answer within ``timeout_s`` (the deployment's by default).
    Raises an UpstreamError subclass on any transport failure."""
    if timeout_s is not None and timeout_s != target.timeout_s:
        target = _with_timeout(target, timeout_s)
    provider = target.provider
    url, ups = _prepare(req, provider)
    limit = ups.limit(url)
    await limit.acquire(host_of(url), provider)
    try:
        resp = await _request(ups, req, url, target, stream=False)
        try:
            problem = _not_final(resp, provider)
            if problem is not None:
                raise problem
            body = await _read_capped(resp, ups.max_response_bytes, provider)
        except BaseException:
            resp.close()
            raise
        resp.release()
        return UpstreamResponse(resp.status, _headers(resp), body)
    except FAILURES as exc:
        raise transport_error(exc, provider, url) from None
    finally:
        limit.release()


def _with_timeout(target: Target, timeout_s: float) -> Target:
    return dataclasses.replace(target, timeout_s=timeout_s, stream_timeout_s=None)


class UpstreamStream:
    """An open streaming response: ``status``/``headers`` now, body chunks as they arrive,
    each wait for more bounded by the read timeout."""

    def __init__(
        self, resp: aiohttp.ClientResponse, provider: str, url: URL, max_bytes: int
    ) -> None:
        self._resp = resp
        self._provider = provider
        self._url = url
        self._max_bytes = max_bytes
        self.status = resp.status
        self.headers = _headers(resp)
        self.complete = False

    async def read_all(self) -> bytes:
        """The whole body (an error answer), capped like a non-stream answer."""
        try:
            body = await _read_capped(self._resp, self._max_bytes, self._provider)
        except FAILURES as exc:
            raise transport_error(exc, self._provider, self._url) from None
        self.complete = True
        return body

    async def drain(self) -> None:
        """Read what is left of a body whose answer is complete (usually only the chunked
        terminator, already buffered), so the connection goes back to the pool. A failure
        here costs only the connection: the client already has everything."""
        with contextlib.suppress(UpstreamError):
            async for _ in self.chunks():
                pass

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body as it arrives; memory stays bounded (aiohttp stops reading the socket
        while the consumer is behind)."""
        content = self._resp.content
        try:
            while data := await content.readany():
                yield data
        except FAILURES as exc:
            raise transport_error(exc, self._provider, self._url) from None
        self.complete = True


@contextlib.asynccontextmanager
async def open_stream(
    req: UpstreamRequest, *, target: Target, timeout_s: float | None = None
) -> AsyncIterator[UpstreamStream]:
    """Open a streaming request (the head due within the timeout, then each read within it
    of the last); leaving the block (or cancellation) closes the connection unless the body
    was read to its end."""
    if timeout_s is not None:
        target = _with_timeout(target, timeout_s)
    provider = target.provider
    url, ups = _prepare(req, provider)
    limit = ups.limit(url)
    await limit.acquire(host_of(url), provider)
    try:
        try:
            resp = await _request(ups, req, url, target, stream=True)
        except FAILURES as exc:
            raise transport_error(exc, provider, url) from None
        stream = UpstreamStream(resp, provider, url, ups.max_response_bytes)
        try:
            problem = _not_final(resp, provider)
            if problem is not None:
                raise problem
            yield stream
        finally:
            # A complete exchange gives its connection back to the pool; an abandoned one
            # (client gone, error mid-body) is closed so the upstream stops generating.
            if stream.complete:
                resp.release()
            else:
                resp.close()
    finally:
        limit.release()
