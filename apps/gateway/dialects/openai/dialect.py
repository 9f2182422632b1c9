"""The OpenAI client format on the way out: answers, stream chunks and errors."""

from __future__ import annotations

from collections.abc import Callable

import orjson

from apps.core.errors import GatewayError
from apps.providers.schemas import CanonicalRequest, Result, StreamChunk, Usage


class OpenAIDialect:
    """Renders answers, streams and errors the way OpenAI's API does."""

    name = "openai"

    def error(self, err: GatewayError) -> tuple[int, bytes]:
        return err.http_status, orjson.dumps(err.to_openai())

    def render(self, request: CanonicalRequest, result: Result) -> bytes:
        return result.body()

    def stream_encoder(self, request: CanonicalRequest) -> OpenAIStreamEncoder:
        return OpenAIStreamEncoder(request.include_usage)


class OpenAIStreamEncoder:
    """OpenAI SSE: ``data: <chunk>`` events, the usage chunk only when asked for, ``[DONE]``."""

    __slots__ = ("_include_usage", "_last", "_usage_sent")

    def __init__(self, include_usage: bool) -> None:
        self._include_usage = include_usage
        self._usage_sent = False
        self._last: StreamChunk | None = None

    def chunk(self, chunk: StreamChunk, usage_only: bool) -> bytes:
        if usage_only:
            if not self._include_usage:
                return b""
            self._usage_sent = True
        else:
            self._last = chunk
        return b"data: " + chunk.payload() + b"\n\n"

    def relayed(self, usage_sent: bool, last: Callable[[], StreamChunk | None]) -> None:
        """Bytes were relayed around this encoder: note whether the usage chunk went out, and
        how to find the last chunk should a usage chunk have to be made."""
        self._usage_sent = self._usage_sent or usage_sent
        if self._include_usage and not self._usage_sent:
            self._last = last()

    def finish(self, usage: Usage | None) -> bytes:
        tail = b""
        if self._include_usage and not self._usage_sent and usage is not None:
            base = self._last.json() if self._last is not None else {}
            data = {
                "id": base.get("id", ""),
                "object": base.get("object", "chat.completion.chunk"),
                "created": base.get("created", 0),
                "model": base.get("model", ""),
                "choices": [],
                "usage": usage.to_openai(),
            }
            tail = b"data: " + orjson.dumps(data) + b"\n\n"
        return tail + b"data: [DONE]\n\n"

    def error(self, err: GatewayError) -> bytes:
        return b"data: " + orjson.dumps(err.to_openai()) + b"\n\n"


OPENAI = OpenAIDialect()
