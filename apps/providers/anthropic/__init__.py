"""The Anthropic Messages API (https://docs.anthropic.com/en/api/messages) as an upstream.

OpenAI chat requests are translated to Messages requests (``request``, ``messages``), answers
and streams back to OpenAI shape (``response``, ``stream``), errors per the documented error
types (``errors``). ``native`` relays Messages-format clients unchanged; the gateway's own
/v1/messages endpoint and its translations live in ``apps/gateway/dialects/anthropic``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import orjson

from apps.core.errors import UpstreamError
from apps.providers.anthropic.errors import parse_error as _parse_error
from apps.providers.anthropic.native import (
    NativeUsageScanner,
    count_tokens_request,
    native_request,
    native_usage,
)
from apps.providers.anthropic.request import (
    CHAT_PARAMS,
    NOOP_VALUES,
    build_headers,
    build_payload,
    messages_url,
)
from apps.providers.anthropic.response import message_to_openai
from apps.providers.anthropic.stream import AnthropicStreamDecoder
from apps.providers.base import (
    BaseProvider,
    SupportsCountTokens,
    SupportsNative,
    parse_json_object,
)
from apps.providers.schemas import (
    CanonicalRequest,
    JSONDict,
    Op,
    Result,
    Target,
    UpstreamRequest,
    Usage,
)

__all__ = ["AnthropicProvider", "AnthropicStreamDecoder", "NativeUsageScanner"]


class AnthropicProvider(BaseProvider):
    name: ClassVar[str] = "anthropic"
    display_name: ClassVar[str] = "Anthropic"
    ops = frozenset({Op.CHAT})
    default_api_base: ClassVar[str | None] = "https://api.anthropic.com"
    chat_params: ClassVar[frozenset[str] | None] = CHAT_PARAMS
    api_key_env: ClassVar[str | None] = "ANTHROPIC_API_KEY"
    # Messages-format clients are relayed unchanged (``native``).
    native_format: ClassVar[str] = "anthropic"

    def build_request(self, request: CanonicalRequest, target: Target) -> UpstreamRequest:
        """Raises InvalidRequest for unsupported parameters (unless dropped) or content."""
        self.check_op(request)
        body = self._supported_body(request, target)
        payload = build_payload(body, target, stream=request.stream)
        return UpstreamRequest(
            method="POST",
            url=messages_url(self.api_base(target)),
            headers=build_headers(target),
            body=orjson.dumps(payload),
        )

    def _supported_body(self, request: CanonicalRequest, target: Target) -> JSONDict:
        body = request.body
        if any(body.get(key, object()) in values for key, values in NOOP_VALUES.items()):
            body = {k: v for k, v in body.items() if not (k in NOOP_VALUES and v in NOOP_VALUES[k])}
            request = request.with_body(body)
        return self.filter_params(request, target, CHAT_PARAMS)

    def parse_response(self, request: CanonicalRequest, target: Target, body: bytes) -> Result:
        data = parse_json_object(self.name, body)
        if data.get("type") == "error":
            raise _parse_error(502, body, {})
        result, usage = message_to_openai(data, target.model)
        return Result(data=result, usage=usage)

    def new_stream_decoder(
        self, request: CanonicalRequest, target: Target
    ) -> AnthropicStreamDecoder:
        return AnthropicStreamDecoder(target.model)

    def parse_error(self, status: int, body: bytes, headers: Mapping[str, str]) -> UpstreamError:
        return _parse_error(status, body, headers)

    # Native pass-through for Messages-format clients, and their token counts.

    @property
    def native(self) -> SupportsNative:
        return self

    @property
    def count_tokens(self) -> SupportsCountTokens:
        return self

    def build_native_request(
        self, body: JSONDict, target: Target, client_headers: Mapping[str, str] | None = None
    ) -> UpstreamRequest:
        """The client's Messages body for ``target``: model replaced, gateway-only fields
        removed; ``client_headers`` may carry the client's anthropic-version/anthropic-beta."""
        return native_request(body, target, self.api_base(target), client_headers)

    def native_usage(self, body: bytes) -> Usage:
        return native_usage(body)

    def native_stream_scanner(self) -> NativeUsageScanner:
        return NativeUsageScanner()

    def build_count_tokens_request(
        self, body: JSONDict, target: Target, client_headers: Mapping[str, str] | None = None
    ) -> UpstreamRequest:
        """The upstream token count for a Messages body (generation-only fields removed)."""
        return count_tokens_request(body, target, self.api_base(target), client_headers)
