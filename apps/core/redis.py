"""The Redis connection shared by every part of the gateway that keeps state across instances.

Every key and channel name goes through :func:`name`, which puts ``GATEWAY_REDIS_PREFIX`` in
front: several gateways (or test runs) can share one Redis server without seeing each other's
counters or messages (pub/sub channels ignore the database number, so the prefix is the only
separation there).

:func:`client` returns one ``redis.asyncio`` client per event loop (a connection pool is bound to
the loop that created it), or ``None`` when ``REDIS_URL`` is unset.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import TYPE_CHECKING

from apps.core.conf import conf

if TYPE_CHECKING:
    import redis.asyncio as aioredis

_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, tuple[str, aioredis.Redis]] = (
    weakref.WeakKeyDictionary()
)


def name(suffix: str) -> str:
    """A Redis key or channel name of this gateway: the configured prefix, then ``suffix``."""
    prefix: str = conf.GATEWAY_REDIS_PREFIX
    return prefix + suffix


def client() -> aioredis.Redis | None:
    """This event loop's client, created on first use; None without ``REDIS_URL``."""
    url: str | None = conf.REDIS_URL
    if not url:
        return None
    loop = asyncio.get_running_loop()
    found = _clients.get(loop)
    # A changed REDIS_URL (settings overridden in tests) gets a client of its own.
    if found is None or found[0] != url:
        import redis.asyncio as aioredis

        found = (
            url,
            aioredis.Redis.from_url(
                url,
                socket_timeout=conf.GATEWAY_REDIS_TIMEOUT_S,
                socket_connect_timeout=conf.GATEWAY_REDIS_TIMEOUT_S,
                health_check_interval=30,
            ),
        )
        _clients[loop] = found
    return found[1]


async def close() -> None:
    """Close this event loop's client (at shutdown)."""
    loop = asyncio.get_running_loop()
    found = _clients.pop(loop, None)
    if found is not None:
        await found[1].aclose()
