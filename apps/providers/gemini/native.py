"""Pass-through for clients that speak the Gemini API themselves (the Google Gen AI SDK on the
gateway's ``/gemini`` and ``/vertex_ai`` routes).

The body goes upstream as the client wrote it, minus the gateway's own fields; the URL is the
deployment's (host, project, location, model) with the client's API version and method; the
answer is relayed byte for byte. Usage is read from ``usageMetadata``, which every
GenerateContent answer carries and every streamed chunk repeats cumulatively
(https://ai.google.dev/api/generate-content#UsageMetadata).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import orjson

from apps.core.errors import InvalidRequest, UpstreamError
from apps.providers import urls
from apps.providers.gemini.errors import stream_error
from apps.providers.gemini.response import usage_from
from apps.providers.schemas import GATEWAY_ONLY_FIELDS, JSONDict, Target, Usage
from apps.providers.sse import SSEEvent, SSEParser

# Methods a pass-through call may use: each names its model in the path.
# https://ai.google.dev/api (generateContent, streamGenerateContent, countTokens, embedContent,
# batchEmbedContents) and Vertex AI's publisher model methods.
METHODS = frozenset(
    {
        "generateContent",
        "streamGenerateContent",
        "countTokens",
        "embedContent",
        "batchEmbedContents",
        "predict",
    }
)
# Methods that bill tokens (the others answer a count or embeddings).
STREAM_METHOD = "streamGenerateContent"
API_VERSIONS = frozenset({"v1", "v1beta", "v1alpha", "v1beta1"})
GEMINI_HOST = "https://generativelanguage.googleapis.com"
# The only query parameter forwarded: ``key`` carries the client's gateway key.
FORWARDED_QUERY = ("alt",)
# A JSON-array stream (no ``alt=sse``) is parsed at its end for usage, up to this size.
_MAX_ARRAY_SCAN = 8 * 1024 * 1024


def segment(value: str) -> str:
    """``value`` as one URL path segment: every reserved character escaped; a dot segment or
    a control character refused (400)."""
    urls.segment(value, allow_slash=True)
    return quote(value, safe="")


def check_method(method: str) -> None:
    if method not in METHODS:
        raise InvalidRequest(
            f"Method ':{method}' is not served by the pass-through route.", code="not_found"
        )


def native_body(body: JSONDict) -> JSONDict:
    """The upstream body: the gateway's own fields (``metadata``...) removed."""
    return {k: v for k, v in body.items() if k not in GATEWAY_ONLY_FIELDS}


def query_string(query: dict[str, str]) -> str:
    """The forwarded query parameters, encoded (without the "?")."""
    return "&".join(
        f"{name}={quote(query[name], safe='')}" for name in FORWARDED_QUERY if name in query
    )


def unversioned_base(base: str) -> str:
    """``base`` without an API version as its last path segment (its query string kept)."""
    path = urls.path_of(base)
    last = path.rsplit("/", 1)[-1]
    if last in API_VERSIONS:
        return urls.with_path(base, path[: -len(last) - 1])
    return base


def gemini_url(target: Target, version: str, model: str, method: str, query: dict[str, str]) -> str:
    """The Gemini API URL for ``model``'s ``method`` at the client's API ``version``; the
    host comes from the deployment (its ``api_base`` without a version suffix; a query string
    in it is kept after the path)."""
    base = unversioned_base(target.api_base or GEMINI_HOST)
    path = f"/{version}/models/{segment(model)}:{method}"
    return urls.join(base, path, query_string(query))


def model_of(target: Target) -> str:
    model = target.model
    return model[len("models/") :] if model.startswith("models/") else model


def native_usage(body: bytes) -> Usage:
    """Usage of a complete answer; zeros when it carries none."""
    try:
        data: Any = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        data = None
    if isinstance(data, list) and data:
        data = data[-1]
    usage = usage_from(data.get("usageMetadata")) if isinstance(data, dict) else None
    return usage or Usage()


class NativeStreamScanner:
    """Watches a relayed ``streamGenerateContent`` answer: bytes pass unchanged; the latest
    ``usageMetadata`` and an in-stream error are kept. SSE (``alt=sse``, what the SDKs ask
    for) is scanned event by event; a JSON-array stream is parsed once at its end."""

    def __init__(self, provider: str, sse: bool) -> None:
        self._provider = provider
        self._sse = sse
        self._parser = SSEParser()
        self._array = bytearray()
        self.usage: Usage | None = None
        self.error: UpstreamError | None = None

    def feed(self, data: bytes) -> bytes:
        if self._sse:
            self._scan(self._parser.feed(data))
        elif len(self._array) < _MAX_ARRAY_SCAN:
            self._array += data
        return data

    def finish(self) -> bytes:
        if self._sse:
            self._scan(self._parser.finish())
        elif self._array:
            try:
                items: Any = orjson.loads(bytes(self._array))
            except orjson.JSONDecodeError:
                items = None
            for item in items if isinstance(items, list) else [items]:
                self._payload(item)
        return b""

    def _scan(self, events: list[SSEEvent]) -> None:
        for event in events:
            # Cheap test first: most chunks carry usage, but parsing is needed only then.
            if b"usageMetadata" not in event.data and b'"error"' not in event.data:
                continue
            try:
                self._payload(orjson.loads(event.data))
            except orjson.JSONDecodeError:
                continue

    def _payload(self, data: Any) -> None:
        if not isinstance(data, dict):
            return
        usage = usage_from(data.get("usageMetadata"))
        if usage is not None:
            self.usage = usage
        err = stream_error(self._provider, data)
        if err is not None:
            self.error = err
