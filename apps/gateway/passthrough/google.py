"""``/gemini/{version}/models/{model}:{method}`` and ``/vertex_ai/{version}/[projects/{p}/
locations/{l}/]publishers/google/models/{model}:{method}``: the Google Gen AI SDK, unchanged
but for its base URL and key.

The key comes in ``x-goog-api-key`` (what the SDK sends for an API key), ``?key=`` or
``Authorization: Bearer``. ``{model}`` names the model group; the upstream URL is the
deployment's (Gemini API host, or Vertex AI's regional host with the deployment's project and
location), with the client's API version and method. The client's project and location are
not used: the deployment's credentials decide where the call goes.
https://ai.google.dev/api/generate-content,
https://cloud.google.com/vertex-ai/generative-ai/docs/reference/rest/v1/projects.locations.publishers.models
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

import orjson

from apps.gateway.call import Call
from apps.gateway.dialects.base import parse_json
from apps.gateway.endpoints import new_request_id, serve_call
from apps.gateway.http import Request, Send
from apps.gateway.passthrough import native
from apps.gateway.passthrough.errors import GOOGLE
from apps.keys.auth import bearer_token
from apps.providers.gemini import native as gemini
from apps.providers.gemini.provider import GeminiProvider, VertexAIProvider
from apps.providers.registry import get_provider
from apps.providers.schemas import (
    GATEWAY_ONLY_FIELDS,
    CanonicalRequest,
    Op,
    Target,
    UpstreamRequest,
)

GEMINI_PATH = r"^/gemini/(?P<version>v1|v1beta|v1alpha)/models/(?P<model>.+):(?P<method>[A-Za-z]+)$"
VERTEX_PATH = (
    r"^/vertex_ai/(?P<version>v1|v1beta1)/(?:projects/[^/]+/locations/[^/]+/)?"
    r"publishers/google/models/(?P<model>.+):(?P<method>[A-Za-z]+)$"
)
_CALL_PREFIX = {"gemini": "gemini", "vertex_ai": "vertex"}


def google_token(req: Request) -> str | None:
    return (
        req.header(b"x-goog-api-key")
        or req.query.get("key")
        or bearer_token(req.header(b"authorization"))
    )


def _metadata(body: Mapping[str, object]) -> dict[str, object]:
    metadata = body.get("metadata")
    return dict(metadata) if isinstance(metadata, dict) else {}


def _handler(route: str) -> native.Handler:
    async def handler(req: Request) -> None:
        params = req.scope.get("path_params", {})
        version = str(params.get("version", ""))
        model = await native.group_name(route, str(params.get("model", "")))
        method = str(params.get("method", ""))
        query = dict(req.query)
        call = Call(
            request_id=new_request_id(),
            call_type=f"{_CALL_PREFIX[route]}:{method}"[:30],
            dialect=GOOGLE,
        )
        state: dict[str, native.NativeCall] = {}

        def parse(raw: bytes) -> CanonicalRequest:
            gemini.check_method(method)
            native.check_segment(model, "model")
            body = parse_json(raw)
            upstream_body = (
                orjson.dumps(gemini.native_body(body))
                if any(name in body for name in GATEWAY_ONLY_FIELDS)
                else raw
            )
            stream = method == gemini.STREAM_METHOD
            sse = query.get("alt") == "sse"

            def build(target: Target) -> UpstreamRequest:
                provider = get_provider(target.provider)
                assert isinstance(provider, GeminiProvider | VertexAIProvider)
                headers = {"content-type": "application/json", **provider.auth_headers(target)}
                headers.update(target.headers)
                url = provider.native_url(target, version, method, query)
                return UpstreamRequest(method="POST", url=url, headers=headers, body=upstream_body)

            state["native"] = native.NativeCall(
                route=route,
                providers=frozenset({route}),
                build=build,
                usage=lambda data, _headers: gemini.native_usage(data),
                scanner=(lambda: gemini.NativeStreamScanner(route, sse)) if stream else None,
            )
            return CanonicalRequest(
                op=Op.EMBEDDINGS if "mbed" in method else Op.CHAT,
                body={"model": model, "metadata": _metadata(body)},
                stream=stream,
                native=body,
                native_format=route,
            )

        async def answer(call: Call, send: Send) -> Decimal | None:
            return await native.answer(call, send, state["native"])

        await serve_call(call, req, parse, token=google_token, answer=answer)

    handler.__name__ = f"{route}_passthrough"
    return handler


gemini_passthrough = _handler("gemini")
vertex_passthrough = _handler("vertex_ai")
