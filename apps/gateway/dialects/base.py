"""What every client-facing format provides to the pipeline, and the JSON body reader they
share."""

from __future__ import annotations

from typing import Any, Protocol

import orjson

from apps.core.errors import GatewayError, InvalidRequest
from apps.providers.schemas import CanonicalRequest, JSONDict, Result, StreamChunk, Usage


class StreamEncoder(Protocol):
    """Canonical stream chunks -> the client's stream format; one per response."""

    def chunk(self, chunk: StreamChunk, usage_only: bool) -> bytes: ...
    def finish(self, usage: Usage | None) -> bytes: ...
    def error(self, err: GatewayError) -> bytes: ...


class Dialect(Protocol):
    """A client-facing API format (OpenAI, Anthropic, ...)."""

    name: str

    def error(self, err: GatewayError) -> tuple[int, bytes]: ...
    def render(self, request: CanonicalRequest, result: Result) -> bytes: ...
    def stream_encoder(self, request: CanonicalRequest) -> StreamEncoder: ...


# orjson reads 1024 levels of nesting but writes only 254: a body between the two could not be
# sent upstream (nor its metadata logged). Translations add a few levels: keep well below.
MAX_DEPTH = 128


def _nested_deeper_than(value: JSONDict, limit: int) -> bool:
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        for child in item.values() if isinstance(item, dict) else item:
            if isinstance(child, dict | list):
                if depth >= limit:
                    return True
                stack.append((child, depth + 1))
    return False


def parse_json(body: bytes) -> JSONDict:
    """The body as a JSON object. Raises InvalidRequest for anything else."""
    if not body:
        raise InvalidRequest("Request body is empty; expected a JSON object.", code="invalid_json")
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(
            f"Request body is not valid JSON: {exc}.", code="invalid_json"
        ) from None
    if not isinstance(data, dict):
        raise InvalidRequest("Request body must be a JSON object.", code="invalid_json")
    # Only a body with that many brackets can nest that deep: almost every body skips the walk.
    if body.count(b"[") + body.count(b"{") > MAX_DEPTH and _nested_deeper_than(data, MAX_DEPTH):
        raise InvalidRequest(
            f"Request body nests objects and arrays more than {MAX_DEPTH} levels deep.",
            code="too_deeply_nested",
        )
    return data
