"""The ASGI application in front of everything: gateway paths are served here directly (no
Django request, no middleware, no thread hop); every other path goes to Django."""

from __future__ import annotations

import gc
import logging
import re
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from apps.core.changes import ChangeWatcher
from apps.core.conf import conf
from apps.core.errors import MethodNotAllowed, NotFound
from apps.gateway import info
from apps.gateway.endpoints import model_in_path_handler, openai_handler
from apps.gateway.http import Receive, Request, Scope, Send, send_response
from apps.gateway.upstream import close_pool, configuration_error
from apps.providers.schemas import Op
from apps.usage.writer import writer

logger = logging.getLogger(__name__)

Handler = Callable[[Request], Awaitable[None]]

# (method, path) -> handler. Each OpenAI path also answers without the /v1 prefix.
ROUTES: dict[str, dict[str, Handler]] = {}
# Paths with parameters: (compiled pattern, method -> handler); the match dict lands in scope.
PATTERN_ROUTES: list[tuple[re.Pattern[str], dict[str, Handler]]] = []


def route(path: str, method: str, handler: Handler, *, v1_alias: bool = True) -> None:
    ROUTES.setdefault(path, {})[method] = handler
    if v1_alias:
        ROUTES.setdefault("/v1" + path, {})[method] = handler


def route_pattern(pattern: str, method: str, handler: Handler) -> None:
    for compiled, methods in PATTERN_ROUTES:
        if compiled.pattern == pattern:
            methods[method] = handler
            return
    PATTERN_ROUTES.append((re.compile(pattern), {method: handler}))


route("/chat/completions", "POST", openai_handler(Op.CHAT))
route("/completions", "POST", openai_handler(Op.COMPLETIONS))
route("/embeddings", "POST", openai_handler(Op.EMBEDDINGS))
route("/moderations", "POST", openai_handler(Op.MODERATIONS))
route("/models", "GET", info.list_models)
route("/model/info", "GET", info.model_info)
route("/health", "GET", info.health, v1_alias=False)
route("/health/liveliness", "GET", info.liveliness, v1_alias=False)
route("/health/liveness", "GET", info.liveliness, v1_alias=False)
route("/health/readiness", "GET", info.readiness, v1_alias=False)
# LiteLLM's and Azure's path shapes with the model in the path.
route_pattern(
    r"^/(?:v1/)?engines/(?P<model>.+)/chat/completions/?$",
    "POST",
    model_in_path_handler(Op.CHAT, "model"),
)


def _install_extensions() -> None:
    """Optional endpoint modules register their routes when present."""
    import importlib

    for module in ("apps.gateway.anthropic_endpoints", "apps.gateway.azure_endpoints"):
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise


class GatewayApp:
    def __init__(self, django_app: Callable[..., Awaitable[None]]) -> None:
        self.django_app = django_app
        self.watcher = ChangeWatcher()
        self._started = False
        _install_extensions()

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
        methods = ROUTES.get(path)
        if methods is None and len(path) > 1 and path.endswith("/"):
            methods = ROUTES.get(path.rstrip("/"))
        if methods is None:
            for pattern, candidates in PATTERN_ROUTES:
                match = pattern.match(path)
                if match:
                    scope["path_params"] = match.groupdict()
                    methods = candidates
                    break
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
            err = MethodNotAllowed(f"Method {scope['method']} is not allowed on {path}.")
            headers = [(b"allow", ", ".join(methods).encode())]
            await send_response(send, 405, orjson.dumps(err.to_openai()), headers)
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
        sys.setswitchinterval(conf.GATEWAY_SWITCH_INTERVAL_S)
        gc.freeze()

    async def shutdown(self) -> None:
        """Write every pending usage row, close upstream connections, stop watchers."""
        try:
            await writer.close()
        except Exception:
            logger.exception("usage rows could not be written at shutdown")
        await close_pool()
        await self.watcher.stop()


def build(django_app: Any) -> GatewayApp:
    return GatewayApp(django_app)
