"""Cache invalidation across processes and instances.

Writers call :func:`changed` (directly or through model signals) after data that processes keep
in memory changes. Local listeners run at once; other processes learn it from Redis pub/sub when
``REDIS_URL`` is set, and from a cheap poll of :class:`ChangeMarker` otherwise (and as a backstop).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
from collections.abc import Callable

from django.conf import settings
from django.db import transaction
from django.db.models import F

from apps.core import redis as shared_redis
from apps.core.db import db_task
from apps.core.models import ChangeMarker

logger = logging.getLogger(__name__)

TOPIC_KEYS = "keys"
TOPIC_ROUTING = "routing"
TOPIC_CONFIG = "config"


def channel() -> str:
    """The pub/sub channel of change messages (channels ignore Redis database numbers, so the
    configured prefix is what keeps gateways sharing a server apart)."""
    return shared_redis.name("changes")


_listeners: dict[str, list[Callable[[], None]]] = {}
_seen: dict[str, int] = {}


def subscribe(topic: str, callback: Callable[[], None]) -> None:
    """Run ``callback`` (cheap, sync, no I/O) whenever ``topic`` changes anywhere."""
    _listeners.setdefault(topic, []).append(callback)


def _fire(topic: str) -> None:
    for callback in _listeners.get(topic, ()):
        try:
            callback()
        except Exception:
            logger.exception("cache listener for %s failed", topic)


def changed(topic: str) -> None:
    """Record that ``topic`` changed: bump its marker, clear local caches, tell other instances.

    Safe inside a transaction: the effects run on commit.
    """

    def _after_commit() -> None:
        updated = ChangeMarker.objects.filter(topic=topic).update(revision=F("revision") + 1)
        if not updated:
            ChangeMarker.objects.get_or_create(topic=topic, defaults={"revision": 1})
        if _seen:
            # This process clears its caches now, after the revision read here (which may
            # include another process's change, committed before): its poll must not clear
            # them again for it. Before the first poll nothing is recorded.
            _seen[topic] = ChangeMarker.objects.get(topic=topic).revision
        _fire(topic)
        _publish(topic)

    transaction.on_commit(_after_commit)


def _new_origin() -> None:
    global _origin
    _origin = secrets.token_hex(8)


# Who published a message: a process ignores its own (it cleared its caches when it published).
_origin = ""
_new_origin()
os.register_at_fork(after_in_child=_new_origin)


def _received(data: bytes | str) -> None:
    """A change message: ``topic`` or ``topic origin``; this process's own are skipped."""
    text = data.decode() if isinstance(data, bytes) else str(data)
    topic, _, origin = text.partition(" ")
    if origin != _origin:
        _fire(topic)


def _publish(topic: str) -> None:
    url = settings.REDIS_URL
    if not url:
        return
    try:
        import redis

        client = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
        try:
            client.publish(channel(), f"{topic} {_origin}")
        finally:
            client.close()
    except Exception as exc:  # Redis down: the marker poll still reaches every process.
        logger.warning("could not publish cache change on Redis: %s", type(exc).__name__)


def _read_markers() -> dict[str, int]:
    return dict(ChangeMarker.objects.values_list("topic", "revision"))


def poll_once() -> list[str]:
    """Compare markers with what this process saw; fire listeners of changed topics."""
    markers = _read_markers()
    first = not _seen
    fired = []
    for topic, revision in markers.items():
        if _seen.get(topic) != revision:
            if not first:
                _fire(topic)
                fired.append(topic)
            _seen[topic] = revision
    if first:
        # A topic nobody has changed yet has no marker: count it as revision 0, so that the
        # marker another process creates with its first change is seen as a change.
        for topic in _listeners:
            _seen.setdefault(topic, 0)
    return fired


class ChangeWatcher:
    """Background task of one process: polls markers and listens on Redis."""

    def __init__(self) -> None:
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        if self._tasks:
            return
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self._poll_loop()))
        url: str | None = settings.REDIS_URL
        if url:
            self._tasks.append(loop.create_task(self._redis_loop(url)))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()

    async def _poll_loop(self) -> None:
        poll = db_task(poll_once)
        while True:
            try:
                await poll()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning("change poll failed: %s", exc)
            await asyncio.sleep(settings.GATEWAY_CHANGE_POLL_S)

    async def _redis_loop(self, url: str) -> None:
        """A client of its own: a subscription holds its connection, and the shared client's
        socket timeout would end a quiet one."""
        import redis.asyncio as aioredis

        while True:
            client = aioredis.Redis.from_url(url)
            try:
                pubsub = client.pubsub()
                await pubsub.subscribe(channel())
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        _received(message["data"])
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning("redis change listener failed, retrying: %s", type(exc).__name__)
                await asyncio.sleep(1.0)
            finally:
                with contextlib.suppress(Exception):
                    await client.aclose()
