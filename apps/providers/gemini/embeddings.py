"""OpenAI embeddings <-> Gemini ``batchEmbedContents`` and Vertex AI ``predict``.

https://ai.google.dev/api/embeddings#method:-models.batchembedcontents
https://cloud.google.com/vertex-ai/generative-ai/docs/model-reference/text-embeddings-api
"""

from __future__ import annotations

import base64
import math
import struct
from typing import Any

from apps.core.errors import InvalidRequest, UpstreamError
from apps.providers.gemini.request import GATEWAY_ONLY
from apps.providers.schemas import JSONDict, Result, Usage

EMBEDDING_PARAMS = GATEWAY_ONLY | frozenset(
    {"input", "dimensions", "encoding_format", "user", "task_type", "extra_body"}
)


def texts_of(body: JSONDict) -> list[str]:
    """The input strings. Raises InvalidRequest for token-array inputs Gemini cannot take."""
    value = body.get("input")
    items = value if isinstance(value, list) else [value]
    texts = [item for item in items if isinstance(item, str)]
    if not items or len(texts) != len(items):
        raise InvalidRequest(
            "Gemini embeddings take a string or a list of strings as input.", param="input"
        )
    return texts


def _extra(body: JSONDict) -> JSONDict:
    extra = body.get("extra_body")
    return {k: v for k, v in extra.items() if k not in GATEWAY_ONLY} if extra else {}


def gemini_payload(body: JSONDict, model: str) -> JSONDict:
    """A BatchEmbedContentsRequest, one EmbedContentRequest per input."""
    common: JSONDict = {}
    if isinstance(body.get("dimensions"), int):
        common["outputDimensionality"] = body["dimensions"]
    if isinstance(body.get("task_type"), str):
        common["taskType"] = body["task_type"]
    common.update(_extra(body))
    return {
        "requests": [
            {"model": f"models/{model}", "content": {"parts": [{"text": text}]}, **common}
            for text in texts_of(body)
        ]
    }


def vertex_payload(body: JSONDict) -> JSONDict:
    """A text-embeddings ``predict`` request."""
    instance: JSONDict = {}
    if isinstance(body.get("task_type"), str):
        instance["task_type"] = body["task_type"]
    payload: JSONDict = {"instances": [{"content": t, **instance} for t in texts_of(body)]}
    if isinstance(body.get("dimensions"), int):
        payload["parameters"] = {"outputDimensionality": body["dimensions"]}
    for key, value in _extra(body).items():
        if key == "parameters" and isinstance(value, dict):
            payload["parameters"] = {**payload.get("parameters", {}), **value}
        else:
            payload[key] = value
    return payload


def _encode(values: list[float], encoding: Any) -> list[float] | str:
    if encoding == "base64":
        return base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode()
    return values


def _estimate(texts: list[str]) -> int:
    return sum(max(1, math.ceil(len(t) / 4)) for t in texts if t)


def _result(vectors: list[list[float]], body: JSONDict, model: str, tokens: int) -> Result:
    encoding = body.get("encoding_format")
    usage = Usage(prompt_tokens=tokens)
    data: JSONDict = {
        "object": "list",
        "data": [
            {"object": "embedding", "index": n, "embedding": _encode(vector, encoding)}
            for n, vector in enumerate(vectors)
        ],
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }
    return Result(data=data, usage=usage)


def _malformed(provider: str) -> UpstreamError:
    return UpstreamError(f"{provider} error: unexpected embeddings response.", upstream_status=200)


def parse_gemini(data: JSONDict, body: JSONDict, model: str, provider: str) -> Result:
    """BatchEmbedContentsResponse -> OpenAI embeddings. The API reports no token count unless
    ``usageMetadata`` is present, so usage is then estimated at four characters a token."""
    embeddings = data.get("embeddings")
    if not isinstance(embeddings, list):
        raise _malformed(provider)
    vectors: list[list[float]] = []
    for embedding in embeddings:
        values = embedding.get("values") if isinstance(embedding, dict) else None
        if not isinstance(values, list):
            raise _malformed(provider)
        vectors.append(values)
    metadata = data.get("usageMetadata")
    tokens = metadata.get("promptTokenCount") if isinstance(metadata, dict) else None
    if not isinstance(tokens, int):
        tokens = _estimate(texts_of(body))
    return _result(vectors, body, model, tokens)


def parse_vertex(data: JSONDict, body: JSONDict, model: str, provider: str) -> Result:
    """``predict`` response -> OpenAI embeddings, usage from each prediction's token_count."""
    predictions = data.get("predictions")
    if not isinstance(predictions, list):
        raise _malformed(provider)
    vectors: list[list[float]] = []
    tokens = 0
    for prediction in predictions:
        embedding = prediction.get("embeddings") if isinstance(prediction, dict) else None
        values = embedding.get("values") if isinstance(embedding, dict) else None
        if not isinstance(values, list):
            raise _malformed(provider)
        vectors.append(values)
        stats = embedding.get("statistics") if isinstance(embedding, dict) else None
        count = stats.get("token_count") if isinstance(stats, dict) else None
        tokens += int(count) if isinstance(count, int | float) else 0
    return _result(vectors, body, model, tokens or _estimate(texts_of(body)))
