"""Webhook callbacks: a JSON event per call to the URLs in ``success_callback`` /
``failure_callback`` (``litellm_settings`` of the config file, or the proxy config in the admin).

Entries may be a URL, ``generic_api`` (LiteLLM's generic logger: ``GENERIC_LOGGER_ENDPOINT``),
or a mapping ``{"url": ..., "secret": ..., "headers": {...}}``; other names (integrations the
gateway does not have) are ignored with a warning. Events are posted in batches (a JSON array,
up to ``BATCH`` events), signed with HMAC-SHA256 when a secret is set (the entry's, else
``GATEWAY_CALLBACK_SECRET``): ``x-gateway-signature: sha256=<hex of HMAC(secret, timestamp + "."
+ body)>`` with ``x-gateway-timestamp``. A failed post is retried with backoff; the queue is
bounded (``GATEWAY_CALLBACK_QUEUE``) and drops its oldest events when full, so a slow receiver
never slows calls. The HTTP client is the gateway's, handed in with :func:`set_transport`.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import hashlib
import hmac
import logging
import os
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import orjson
from prometheus_client import Counter

from apps.core import changes
from apps.core.conf import conf
from apps.core.db import db_task
from apps.core.models import ProxyConfig
from apps.core.secrets import resolve_value

logger = logging.getLogger(__name__)

Row = dict[str, Any]
# (url, headers, body) -> HTTP status; raises OSError-like errors when the post fails.
Transport = Callable[[str, Mapping[str, str], bytes], Awaitable[int]]

BATCH = 100
BACKOFF_S = (0.5, 1.0, 2.0, 4.0, 8.0)

SENT = Counter("gateway_callback_events_sent", "Callback events delivered.")
DROPPED = Counter("gateway_callback_events_dropped", "Callback events given up on.", ["reason"])


@dataclass(frozen=True, slots=True)
class Endpoint:
    url: str
    secret: str = ""
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(slots=True)
class Endpoints:
    success: list[Endpoint] = field(default_factory=list)
    failure: list[Endpoint] = field(default_factory=list)


def _endpoint(entry: Any) -> Endpoint | None:
    secret = conf.GATEWAY_CALLBACK_SECRET or ""
    if isinstance(entry, str):
        if entry.startswith(("http://", "https://")):
            return Endpoint(url=entry, secret=secret)
        if entry in ("generic_api", "generic"):
            url = os.environ.get("GENERIC_LOGGER_ENDPOINT", "")
            return Endpoint(url=url, secret=secret) if url else None
        logger.warning("callback %r is not supported; only webhooks are", entry)
        return None
    if isinstance(entry, Mapping) and isinstance(entry.get("url"), str):
        own = entry.get("secret")
        given = entry.get("headers")
        headers: Mapping[str, Any] = given if isinstance(given, Mapping) else {}
        return Endpoint(
            url=str(resolve_value(entry["url"]) or ""),
            secret=str(resolve_value(own) or "") or secret,
            headers=tuple((str(k), str(resolve_value(v) or "")) for k, v in headers.items()),
        )
    logger.warning("callback entry %r is not understood", entry)
    return None


def parse(settings: Mapping[str, Any]) -> Endpoints:
    """The webhook endpoints of a ``litellm_settings`` mapping."""
    found = Endpoints()
    for name, target in (("success_callback", found.success), ("failure_callback", found.failure)):
        entries = settings.get(name) or []
        for entry in entries if isinstance(entries, list) else [entries]:
            endpoint = _endpoint(entry)
            if endpoint is not None and endpoint.url:
                target.append(endpoint)
    return found


def _load() -> Endpoints:
    config = ProxyConfig.objects.filter(pk=1).first()
    return parse(config.litellm_settings if config is not None else {})


def sign(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def event_of(row: Row) -> dict[str, Any]:
    """The generic event of one call: its usage row, and whether it succeeded."""
    event = dict(row)
    event["event"] = "failure" if row.get("status_code", 0) >= 400 else "success"
    event["response_cost"] = event.pop("cost", Decimal(0))
    return event


def _default(value: Any) -> str:
    return str(value)  # Decimal costs, as exact text


class Dispatcher:
    """One per process: a bounded queue of events and a task posting them."""

    def __init__(self) -> None:
        self.endpoints: Endpoints | None = None  # None: not loaded yet
        self.queue: deque[tuple[Endpoint, dict[str, Any]]] = deque()
        self.pending: deque[Row] = deque()  # rows seen before the endpoints were known
        self.transport: Transport | None = None
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None

    # --- the request path: no I/O -------------------------------------------------------------

    def offer(self, row: Row) -> None:
        """Queue the event of ``row`` for the endpoints that want it (a no-op when none)."""
        endpoints = self.endpoints
        if endpoints is not None and not (endpoints.success or endpoints.failure):
            return
        if self.transport is None:
            return
        if endpoints is None:
            self._bounded(self.pending).append(row)
        else:
            self._route(endpoints, row)
        self._ensure_task()

    def _bounded(self, queue: deque[Any]) -> deque[Any]:
        if len(queue) >= conf.GATEWAY_CALLBACK_QUEUE:
            queue.popleft()
            DROPPED.labels("queue_full").inc()
        return queue

    def _route(self, endpoints: Endpoints, row: Row) -> None:
        failed = row.get("status_code", 0) >= 400
        targets = endpoints.failure if failed else endpoints.success
        if not targets:
            return
        event = event_of(row)
        for endpoint in targets:
            self._bounded(self.queue).append((endpoint, event))
        if self._wake is not None:
            self._wake.set()

    def _ensure_task(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        if self._loop is not loop or self._task is None or self._task.done():
            self._loop = loop
            self._wake = asyncio.Event()
            self._task = loop.create_task(self._run(), context=contextvars.Context())

    # --- the sending task ---------------------------------------------------------------------

    def invalidate(self) -> None:
        """The proxy config changed: read the endpoints again before the next event."""
        self.endpoints = None

    async def _run(self) -> None:
        assert self._wake is not None
        while True:
            if self.endpoints is None:
                try:
                    self.endpoints = await db_task(_load)()
                except Exception:
                    logger.exception("callback endpoints could not be loaded")
                    await asyncio.sleep(1.0)
                    continue
                while self.pending:
                    self._route(self.endpoints, self.pending.popleft())
            if not self.queue:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=1.0)
                continue
            await self._send_batch()

    async def _send_batch(self) -> None:
        endpoint, first = self.queue.popleft()
        events = [first]
        rest: deque[tuple[Endpoint, dict[str, Any]]] = deque()
        while self.queue and len(events) < BATCH:
            item = self.queue.popleft()
            if item[0] == endpoint:
                events.append(item[1])
            else:
                rest.append(item)
        self.queue.extendleft(reversed(rest))
        body = orjson.dumps(events, default=_default)
        await self.deliver(endpoint, body, len(events))

    async def deliver(self, endpoint: Endpoint, body: bytes, count: int) -> bool:
        """Post ``body``; retry with backoff on a network error, 429 or 5xx."""
        assert self.transport is not None
        for attempt, pause in enumerate((0.0, *BACKOFF_S)):
            if pause:
                await asyncio.sleep(pause)
            headers = {"content-type": "application/json", **dict(endpoint.headers)}
            if endpoint.secret:
                stamp = str(int(time.time()))
                headers["x-gateway-timestamp"] = stamp
                headers["x-gateway-signature"] = sign(endpoint.secret, stamp, body)
            try:
                status = await self.transport(endpoint.url, headers, body)
            except Exception as exc:
                logger.warning("callback to %s failed (try %d): %s", endpoint.url, attempt + 1, exc)
                continue
            if status < 300:
                SENT.inc(count)
                return True
            if status != 429 and status < 500:
                logger.error(
                    "callback to %s refused with %d; %d events dropped", endpoint.url, status, count
                )
                DROPPED.labels("refused").inc(count)
                return False
            logger.warning("callback to %s answered %d (try %d)", endpoint.url, status, attempt + 1)
        logger.error("callback to %s kept failing; %d events dropped", endpoint.url, count)
        DROPPED.labels("failed").inc(count)
        return False


dispatcher = Dispatcher()
changes.subscribe(changes.TOPIC_CONFIG, dispatcher.invalidate)


def set_transport(transport: Transport) -> None:
    dispatcher.transport = transport
