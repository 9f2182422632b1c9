"""Minimal ASGI request/response plumbing for the /v1 hot path (no Django request objects)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl

from apps.core.conf import conf
from apps.core.errors import InvalidRequest

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class ClientDisconnected(Exception):
    pass


class Request:
    __slots__ = ("_query", "body", "headers", "method", "path", "receive", "scope", "send")

    def __init__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.scope = scope
        self.receive = receive
        self.send = send
        self.method: str = scope["method"]
        self.path: str = scope["path"]
        # Header names arrive lower-cased (ASGI spec); the last value wins.
        self.headers: dict[bytes, bytes] = dict(scope["headers"])
        self.body = b""
        self._query: dict[str, str] | None = None

    def header(self, name: bytes) -> str | None:
        value = self.headers.get(name)
        return value.decode("latin-1") if value is not None else None

    @property
    def query(self) -> dict[str, str]:
        if self._query is None:
            raw = self.scope.get("query_string", b"").decode("latin-1")
            self._query = dict(parse_qsl(raw)) if raw else {}
        return self._query

    async def read_body(self) -> bytes:
        """The whole body; 400 past GATEWAY_MAX_BODY_BYTES (checked as it arrives)."""
        limit = conf.GATEWAY_MAX_BODY_BYTES
        declared = self.headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise InvalidRequest(
                f"Request body is larger than the limit of {limit} bytes.",
                code="request_too_large",
            )
        parts: list[bytes] = []
        size = 0
        while True:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                raise ClientDisconnected
            chunk = message.get("body", b"")
            if chunk:
                size += len(chunk)
                if size > limit:
                    raise InvalidRequest(
                        f"Request body is larger than the limit of {limit} bytes.",
                        code="request_too_large",
                    )
                parts.append(chunk)
            if not message.get("more_body", False):
                break
        self.body = parts[0] if len(parts) == 1 else b"".join(parts)
        return self.body


JSON_HEADERS = [(b"content-type", b"application/json")]
SSE_HEADERS = [
    (b"content-type", b"text/event-stream"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


def encode_headers(headers: dict[str, str] | None) -> list[tuple[bytes, bytes]]:
    if not headers:
        return []
    return [
        (k.lower().encode("latin-1"), v.encode("latin-1", "replace")) for k, v in headers.items()
    ]


async def send_response(
    send: Send,
    status: int,
    body: bytes,
    headers: list[tuple[bytes, bytes]] | None = None,
    content_type: bytes = b"application/json",
) -> None:
    out = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    if headers:
        out.extend(headers)
    await send({"type": "http.response.start", "status": status, "headers": out})
    await send({"type": "http.response.body", "body": body})
