"""The gateway's one route table: every path it serves, written out in ``gateway_routes``.

Fixed paths are looked up in a dict (a trailing slash is forgiven); paths with parameters are
tried in order as regular expressions, their named groups landing in ``scope["path_params"]``.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from apps.gateway import info
from apps.gateway.dialects import azure
from apps.gateway.dialects.anthropic import endpoints as anthropic
from apps.gateway.dialects.openai.endpoints import model_in_path_handler, openai_handler
from apps.gateway.http import Request, Scope
from apps.gateway.passthrough import routes as passthrough
from apps.providers.schemas import Op

Handler = Callable[[Request], Awaitable[None]]
Methods = dict[str, Handler]


@dataclass
class RouteTable:
    paths: dict[str, Methods] = field(default_factory=dict)
    patterns: list[tuple[re.Pattern[str], Methods]] = field(default_factory=list)

    def add(self, path: str, method: str, handler: Handler, *, v1_alias: bool = True) -> None:
        """``path`` answers ``method``; with ``v1_alias`` also under ``/v1`` (as LiteLLM's
        OpenAI paths do)."""
        self.paths.setdefault(path, {})[method] = handler
        if v1_alias:
            self.paths.setdefault("/v1" + path, {})[method] = handler

    def add_pattern(self, pattern: str, method: str, handler: Handler) -> None:
        for compiled, methods in self.patterns:
            if compiled.pattern == pattern:
                methods[method] = handler
                return
        self.patterns.append((re.compile(pattern), {method: handler}))

    def match(self, scope: Scope) -> Methods | None:
        """The handlers by method for the scope's path (None: not a gateway path); a
        pattern's parameters are stored in the scope."""
        path: str = scope["path"]
        methods = self.paths.get(path)
        if methods is None and len(path) > 1 and path.endswith("/"):
            methods = self.paths.get(path.rstrip("/"))
        if methods is not None:
            return methods
        for pattern, candidates in self.patterns:
            found = pattern.match(path)
            if found:
                scope["path_params"] = found.groupdict()
                return candidates
        return None


def gateway_routes() -> RouteTable:
    table = RouteTable()
    # OpenAI's API.
    table.add("/chat/completions", "POST", openai_handler(Op.CHAT))
    table.add("/completions", "POST", openai_handler(Op.COMPLETIONS))
    table.add("/embeddings", "POST", openai_handler(Op.EMBEDDINGS))
    table.add("/moderations", "POST", openai_handler(Op.MODERATIONS))
    table.add("/models", "GET", info.list_models)
    # LiteLLM's model information and health.
    table.add("/model/info", "GET", info.model_info)
    table.add("/health", "GET", info.health, v1_alias=False)
    table.add("/health/liveliness", "GET", info.liveliness, v1_alias=False)
    table.add("/health/liveness", "GET", info.liveliness, v1_alias=False)
    table.add("/health/readiness", "GET", info.readiness, v1_alias=False)
    # LiteLLM's path shape with the model in the path.
    table.add_pattern(
        r"^/(?:v1/)?engines/(?P<model>.+)/chat/completions/?$",
        "POST",
        model_in_path_handler(Op.CHAT, "model"),
    )
    # Anthropic's Messages API.
    table.add("/messages", "POST", anthropic.messages)
    table.add("/messages/count_tokens", "POST", anthropic.count_tokens)
    # Azure OpenAI's paths.
    for op, pattern in azure.DEPLOYMENT_PATHS:
        table.add_pattern(pattern, "POST", model_in_path_handler(op, "deployment"))
    for op, path in azure.V1_PATHS:
        table.add(path, "POST", openai_handler(op), v1_alias=False)
    # Provider SDKs in their own formats.
    passthrough.register(table)
    return table
