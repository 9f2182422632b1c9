"""One ``aiohttp.ClientSession`` per event loop, configured once, and the per-origin limit.

Settings (``GATEWAY_CONNECT_TIMEOUT_S``, the ``GATEWAY_UPSTREAM_*`` limits) are read when the
session is made; a changed setting takes effect with the next session (tests close it).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import aiohttp
from yarl import URL

from apps.core.conf import conf
from apps.core.errors import UpstreamPoolExhausted
from apps.gateway.upstream import tls
from apps.gateway.upstream.proxy import Proxies

KEEPALIVE_S = 30.0  # an idle connection is closed after this (below common upstream limits)
DNS_TTL_S = 300
# The response head: lines and fields up to 64 KiB pass (real providers send headers of
# 10-20 KB: long policy or trace headers); beyond that the C parser refuses at once.
MAX_LINE_BYTES = 64 * 1024
MAX_FIELD_BYTES = 64 * 1024
MAX_HEADERS = 256
# Headers the session would otherwise add: the provider's request is sent as built (no
# ``Content-Type`` guessed from the body, no ``Accept-Encoding``: the gateway never asks for
# compression; an upstream that compresses unasked is still decoded, with aiohttp's bounded
# decompression).
SKIP_HEADERS = ("User-Agent", "Accept", "Accept-Encoding", "Content-Type")


class OriginLimit:
    """At most ``size`` calls at once to one origin; a waiting call gives up after
    ``queue_timeout`` with UpstreamPoolExhausted."""

    __slots__ = ("_semaphore", "queue_timeout")

    def __init__(self, size: int, queue_timeout: float) -> None:
        self._semaphore = asyncio.Semaphore(size)
        self.queue_timeout = queue_timeout

    async def acquire(self, host: str, provider: str) -> None:
        if not self._semaphore.locked():
            await self._semaphore.acquire()  # returns at once: no timer needed
            return
        try:
            async with asyncio.timeout(self.queue_timeout):
                await self._semaphore.acquire()
        except TimeoutError:
            raise UpstreamPoolExhausted(
                f"{provider} error: every connection to {host} stayed busy for "
                f"{self.queue_timeout:g} s (GATEWAY_UPSTREAM_CONNECTIONS_PER_ORIGIN)."
            ) from None

    def release(self) -> None:
        self._semaphore.release()


@dataclass(slots=True)
class Upstreams:
    """What one event loop uses to call upstreams."""

    session: aiohttp.ClientSession
    proxies: Proxies
    connect_timeout: float
    max_response_bytes: int
    limits: dict[tuple[str, str, int | None], OriginLimit]
    timeouts: dict[tuple[float, bool], aiohttp.ClientTimeout]

    def limit(self, url: URL) -> OriginLimit:
        key = (url.scheme, url.raw_host or "", url.port)
        found = self.limits.get(key)
        if found is None:
            found = self.limits[key] = OriginLimit(
                conf.GATEWAY_UPSTREAM_CONNECTIONS_PER_ORIGIN, conf.GATEWAY_UPSTREAM_QUEUE_TIMEOUT_S
            )
        return found

    def timeout(self, seconds: float, stream: bool) -> aiohttp.ClientTimeout:
        """A whole-call deadline, or for a stream one on the head and on each read after it."""
        key = (seconds, stream)
        found = self.timeouts.get(key)
        if found is None:
            if stream:
                found = aiohttp.ClientTimeout(
                    total=None, sock_connect=self.connect_timeout, sock_read=seconds
                )
            else:
                found = aiohttp.ClientTimeout(total=seconds, sock_connect=self.connect_timeout)
            if len(self.timeouts) > 1024:
                self.timeouts.clear()
            self.timeouts[key] = found
        return found


def new_upstreams(proxies: Proxies | None = None) -> Upstreams:
    connector = aiohttp.TCPConnector(
        limit=0,  # the per-origin limit is OriginLimit's, with its clear error
        limit_per_host=0,
        ttl_dns_cache=DNS_TTL_S,
        keepalive_timeout=KEEPALIVE_S,
        happy_eyeballs_delay=0.25,
        ssl=tls.default_context(),
    )
    session = aiohttp.ClientSession(
        connector=connector,
        cookie_jar=aiohttp.DummyCookieJar(),  # one tenant's cookies never reach another's call
        skip_auto_headers=SKIP_HEADERS,
        auto_decompress=True,
        raise_for_status=False,
        max_line_size=MAX_LINE_BYTES,
        max_field_size=MAX_FIELD_BYTES,
        max_headers=MAX_HEADERS,
        timeout=aiohttp.ClientTimeout(total=None),
    )
    return Upstreams(
        session=session,
        proxies=proxies if proxies is not None else Proxies.from_environment(),
        connect_timeout=conf.GATEWAY_CONNECT_TIMEOUT_S,
        max_response_bytes=conf.GATEWAY_UPSTREAM_MAX_RESPONSE_BYTES,
        limits={},
        timeouts={},
    )
