"""Pass-through for clients that already speak the Messages API (the gateway's /v1/messages).

The body goes upstream as the client wrote it, except for the deployment's model, the
gateway-only fields and ``metadata`` (only ``user_id`` is an API field:
https://docs.anthropic.com/en/api/messages). Responses are relayed byte for byte; usage is read
from the Message (non-stream) or from ``message_start`` and ``message_delta`` events
(https://docs.anthropic.com/en/api/messages-streaming; ``message_delta`` usage is cumulative).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from apps.core.errors import UpstreamError
from apps.providers.anthropic.errors import stream_error
from apps.providers.anthropic.request import (
    build_headers,
    default_max_tokens,
    messages_url,
)
from apps.providers.anthropic.response import usage_from_anthropic
from apps.providers.base import finish_payload
from apps.providers.schemas import GATEWAY_ONLY_FIELDS, JSONDict, Target, UpstreamRequest, Usage
from apps.providers.sse import SSEEvent, SSEParser

# Gateway-only fields a client may add to a Messages body; ``metadata`` is handled apart.
NATIVE_GATEWAY_FIELDS = (GATEWAY_ONLY_FIELDS - {"metadata"}) | {"extra_body"}
_USAGE_EVENTS = frozenset({"message_start", "message_delta", "error"})
# Body fields of the token-counting endpoint (https://docs.anthropic.com/en/api/messages-count-tokens);
# it refuses generation-only fields such as max_tokens, stream or temperature.
COUNT_TOKENS_FIELDS = frozenset(
    {
        "model",
        "messages",
        "system",
        "tools",
        "tool_choice",
        "thinking",
        "output_config",
        "cache_control",
        "speed",
        "mcp_servers",
        "context_management",
    }
)


def native_payload(body: JSONDict, target: Target) -> JSONDict:
    """The upstream body: model replaced, gateway fields removed, ``extra_body`` merged."""
    payload = {k: v for k, v in body.items() if k not in NATIVE_GATEWAY_FIELDS}
    metadata = body.get("metadata")
    payload.pop("metadata", None)
    if isinstance(metadata, dict) and metadata.get("user_id") is not None:
        payload["metadata"] = {"user_id": metadata["user_id"]}
    finish_payload(payload, body, target)
    if payload.get("max_tokens") is None:
        configured = target.params.get("max_tokens")
        payload["max_tokens"] = int(configured) if configured else default_max_tokens(target.model)
    return payload


def native_request(
    body: JSONDict, target: Target, base: str, client_headers: Mapping[str, str] | None
) -> UpstreamRequest:
    return UpstreamRequest(
        method="POST",
        url=messages_url(base),
        headers=build_headers(target, client_headers),
        body=orjson.dumps(native_payload(body, target)),
    )


def count_tokens_request(
    body: JSONDict, target: Target, base: str, client_headers: Mapping[str, str] | None
) -> UpstreamRequest:
    """``POST /v1/messages/count_tokens`` for a Messages body; the answer is
    ``{"input_tokens": N}``."""
    payload = {k: v for k, v in body.items() if k in COUNT_TOKENS_FIELDS}
    payload["model"] = target.model
    return UpstreamRequest(
        method="POST",
        url=messages_url(base, "/count_tokens"),
        headers=build_headers(target, client_headers),
        body=orjson.dumps(payload),
    )


def native_usage(body: bytes) -> Usage:
    """Usage of a non-stream Message body; zeros when it carries none."""
    try:
        data: Any = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        data = None
    usage = usage_from_anthropic(data.get("usage")) if isinstance(data, dict) else None
    return usage or Usage()


class NativeUsageScanner:
    """Watches a relayed Messages stream: ``feed`` returns its bytes unchanged and records
    usage, the stop reason and an in-stream error (kept, not raised: the client gets the event
    as is). Parses only the events that carry usage or an error."""

    def __init__(self) -> None:
        self._parser = SSEParser()
        self._raw: JSONDict | None = None
        self.stop_reason: str | None = None
        self.error: UpstreamError | None = None

    @property
    def usage(self) -> Usage | None:
        return usage_from_anthropic(self._raw)

    def feed(self, data: bytes) -> bytes:
        self._scan(self._parser.feed(data))
        return data

    def finish(self) -> bytes:
        self._scan(self._parser.finish())
        return b""

    def _scan(self, events: list[SSEEvent]) -> None:
        for event in events:
            # Every API event is named; an unnamed one is parsed to read its ``type``.
            if event.event is not None and event.event not in _USAGE_EVENTS:
                continue
            try:
                data = orjson.loads(event.data)
            except orjson.JSONDecodeError:
                continue
            if not isinstance(data, dict):
                continue
            kind = event.event or data.get("type")
            if kind == "message_start" and isinstance(data.get("message"), dict):
                usage = data["message"].get("usage")
                if isinstance(usage, dict):
                    self._raw = dict(usage)
            elif kind == "message_delta":
                delta = data.get("delta")
                if isinstance(delta, dict) and delta.get("stop_reason"):
                    self.stop_reason = str(delta["stop_reason"])
                usage = data.get("usage")
                if isinstance(usage, dict):
                    merged = dict(self._raw or {})
                    merged.update({k: v for k, v in usage.items() if v is not None})
                    self._raw = merged
            elif kind == "error":
                self.error = stream_error(data)
