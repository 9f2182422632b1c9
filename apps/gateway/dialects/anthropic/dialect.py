"""The Anthropic Messages format on the way in and out: requests made canonical, answers,
streams and errors rendered as the Messages API does (https://docs.anthropic.com/en/api/messages,
/en/api/messages-streaming, /en/api/errors)."""

from __future__ import annotations

import orjson

from apps.core.errors import GatewayError, InvalidRequest, UpstreamError
from apps.gateway.dialects.anthropic.errors import anthropic_error_body
from apps.gateway.dialects.anthropic.request import (
    anthropic_request_to_openai,
    openai_response_to_anthropic,
)
from apps.gateway.dialects.anthropic.stream import OpenAIToAnthropicStream, anthropic_usage
from apps.gateway.dialects.base import parse_json
from apps.gateway.http import Request
from apps.providers.schemas import CanonicalRequest, Op, Result, StreamChunk, Usage

FORWARDED_HEADERS = (b"anthropic-version", b"anthropic-beta")
NATIVE_FORMAT = "anthropic"


class AnthropicDialect:
    name = NATIVE_FORMAT

    def error(self, err: GatewayError) -> tuple[int, bytes]:
        status = err.http_status
        if isinstance(err, UpstreamError) and err.upstream_status == 529:
            status = 529  # Anthropic's "overloaded": its SDK has a class for it
        return status, orjson.dumps(anthropic_error_body(status, err.message))

    def render(self, request: CanonicalRequest, result: Result) -> bytes:
        if result.native and result.raw is not None:
            return result.raw
        model = str(result.data.get("model") or request.body.get("model") or "")
        message = openai_response_to_anthropic(result.data, model)
        if result.usage is not None:
            message["usage"] = anthropic_usage(result.usage)
        return orjson.dumps(message)

    def stream_encoder(self, request: CanonicalRequest) -> AnthropicStreamEncoder:
        # The model the client asked for, as in the non-stream answer's fallback.
        return AnthropicStreamEncoder(str(request.body.get("model") or ""))


class AnthropicStreamEncoder:
    """OpenAI chunks -> Anthropic SSE events (message_start ... message_stop)."""

    __slots__ = ("_stream",)

    def __init__(self, model: str) -> None:
        self._stream = OpenAIToAnthropicStream(model)

    def chunk(self, chunk: StreamChunk, usage_only: bool) -> bytes:
        if usage_only:
            return b""
        return self._stream.feed(chunk.json())

    def finish(self, usage: Usage | None) -> bytes:
        return self._stream.finish(usage)

    def error(self, err: GatewayError) -> bytes:
        return self._stream.error_event(err)


ANTHROPIC = AnthropicDialect()


def forwarded_header(name: bytes, value: bytes) -> str:
    """A client header value passed upstream: the upstream client writes header text as
    UTF-8, so it is read as UTF-8 (read as Latin-1, a non-ASCII value arrived double-encoded).
    Bytes that are not UTF-8 are refused rather than altered."""
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidRequest(
            f"The {name.decode()} header is not valid UTF-8.", param=name.decode()
        ) from None


def parse_messages_headers(req: Request) -> dict[str, str]:
    """The client headers a native Anthropic upstream gets (version, beta features)."""
    return {
        name.decode(): forwarded_header(name, value)
        for name in FORWARDED_HEADERS
        if (value := req.headers.get(name)) is not None
    }


def parse_messages(raw: bytes, req: Request) -> CanonicalRequest:
    body = parse_json(raw)
    openai_body = anthropic_request_to_openai(body)
    headers = parse_messages_headers(req)
    return CanonicalRequest(
        op=Op.CHAT,
        body=openai_body,
        stream=body.get("stream") is True,
        native=body,
        native_format=NATIVE_FORMAT,
        client_headers=headers,
    )
