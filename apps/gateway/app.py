"""The ASGI application in front of everything: gateway paths are served here directly (no
Django request, no middleware, no thread hop); every other path goes to Django."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import sys
from collections.abc import Awaitable, Callable, Mapping

import orjson

from apps.core.changes import ChangeWatcher
from apps.core.conf import conf
from apps.core.errors import MethodNotAllowed, NotFound
from apps.gateway import admission, upstream
from apps.gateway.http import Receive, Request, Scope, Send, send_response
from apps.gateway.routes import gateway_routes
from apps.gateway.upstream import close_pool, configuration_error
from apps.keys import budgets, spend_sync
from apps.providers.schemas import Target, UpstreamRequest
from apps.usage import callbacks
from apps.usage.writer import writer

logger = logging.getLogger(__name__)


# What the transport needs to know of a webhook callback's destination (no credentials).
_CALLBACK = Target(deployment_id="", provider="callback", model="", timeout_s=10.0)


async def post_callback(url: str, headers: Mapping[str, str], body: bytes) -> int:
    """Webhook callbacks go out through the gateway's own HTTP client (pooling, proxies)."""
    request = UpstreamRequest(method="POST", url=url, headers=headers, body=body)
    response = await upstream.send(request, target=_CALLBACK)
    return response.status


class GatewayApp:
    def __init__(self, django_app: Callable[..., Awaitable[None]]) -> None:
        self.django_app = django_app
        self.watcher = ChangeWatcher()
        self._started = False
        self._background: list[asyncio.Task[None]] = []
        self.routes = gateway_routes()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await self.lifespan(receive, send)
            return
        if kind != "http":
            await self.django_app(scope, receive, send)
            return
        if not self._started:
            self._start()
        path: str = scope["path"]
        methods = self.routes.match(scope)
        if methods is None:
            if path.startswith("/v1/"):
                # An API client, not a browser: answer in the API's error shape, not HTML.
                err = NotFound(f"Invalid URL ({scope['method']} {path}).")
                await send_response(send, 404, orjson.dumps(err.to_openai()))
                return
            await self.django_app(scope, receive, send)
            return
        handler = methods.get(scope["method"])
        if handler is None:
            refused = MethodNotAllowed(f"Method {scope['method']} is not allowed on {path}.")
            headers = [(b"allow", ", ".join(methods).encode())]
            await send_response(send, 405, orjson.dumps(refused.to_openai()), headers)
            return
        await handler(Request(scope, receive, send))

    async def lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self._start()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    def _start(self) -> None:
        """Once per process, on the event loop: background watchers and runtime tuning.

        The usage writer and cache loads run in threads; with Python's default 5 ms GIL switch
        interval a request could wait that long behind a batch insert, which is what the p99
        latency showed. Objects alive at start-up (modules, settings, tables) are frozen out
        of the cyclic collector, so full collections stay short.
        """
        self._started = True
        problem = configuration_error()
        if problem:
            logger.error("every upstream call will fail: %s", problem)
        self.watcher.start()
        callbacks.set_transport(post_callback)
        loop = asyncio.get_running_loop()
        self._background = [
            loop.create_task(budgets.reset_loop()),
            loop.create_task(spend_sync.sync_loop()),
        ]
        sys.setswitchinterval(conf.GATEWAY_SWITCH_INTERVAL_S)
        gc.freeze()

    async def shutdown(self) -> None:
        """Write every pending usage row, close upstream connections, stop watchers."""
        try:
            await writer.close()
        except Exception:
            logger.exception("usage rows could not be written at shutdown")
        await admission.drain()  # release parallel slots, charge the last calls' spend
        await close_pool()
        await self.watcher.stop()
        for task in self._background:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
