"""Embeddings on the Gemini API (batchEmbedContents) and Vertex AI (predict)."""

from __future__ import annotations

import base64
import struct
from pathlib import Path
from typing import Any

import orjson
import pytest

from apps.core.errors import InvalidRequest, UpstreamError
from apps.providers.gemini import GeminiProvider, VertexAIProvider
from apps.providers.schemas import CanonicalRequest, Op, Target

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "providers" / "gemini"
BODIES = orjson.loads((FIXTURES / "embeddings.json").read_bytes())
GEMINI = Target(deployment_id="d", provider="gemini", model="gemini-embedding-001", api_key="k")
VERTEX = Target(
    deployment_id="d",
    provider="vertex_ai",
    model="text-embedding-005",
    access_token="ya29.t",
    params={"vertex_project": "p", "vertex_location": "us-central1"},
)


def embed(**body: Any) -> CanonicalRequest:
    return CanonicalRequest(op=Op.EMBEDDINGS, body={"model": "e", **body})


class TestGemini:
    def test_request(self) -> None:
        req = GeminiProvider().build_request(
            embed(input=["hello", "world"], dimensions=4, user="u", metadata={"x": 1}), GEMINI
        )
        assert req.url == (
            "https://generativelanguage.googleapis.com/v1beta/models/gemini-embedding-001"
            ":batchEmbedContents"
        )
        assert req.headers["x-goog-api-key"] == "k"
        assert orjson.loads(req.body or b"") == {
            "requests": [
                {
                    "model": "models/gemini-embedding-001",
                    "content": {"parts": [{"text": "hello"}]},
                    "outputDimensionality": 4,
                },
                {
                    "model": "models/gemini-embedding-001",
                    "content": {"parts": [{"text": "world"}]},
                    "outputDimensionality": 4,
                },
            ]
        }

    def test_single_string_and_task_type(self) -> None:
        req = GeminiProvider().build_request(
            embed(input="hello", task_type="RETRIEVAL_QUERY"), GEMINI
        )
        (item,) = orjson.loads(req.body or b"")["requests"]
        assert item["taskType"] == "RETRIEVAL_QUERY"

    def test_token_inputs_are_rejected(self) -> None:
        with pytest.raises(InvalidRequest, match="string"):
            GeminiProvider().build_request(embed(input=[[1, 2, 3]]), GEMINI)

    def test_response_floats(self) -> None:
        body = orjson.dumps(BODIES["gemini_batch_embed_contents"])
        result = GeminiProvider().parse_response(embed(input=["hello", "world"]), GEMINI, body)
        assert result.data["object"] == "list"
        assert result.data["model"] == "gemini-embedding-001"
        assert [d["index"] for d in result.data["data"]] == [0, 1]
        assert result.data["data"][0]["embedding"] == [0.0123, -0.0456, 0.0789, 0.5]
        assert result.data["data"][1]["object"] == "embedding"
        # No token count in the response: estimated at four characters a token.
        assert result.usage is not None and result.usage.prompt_tokens == 4
        assert result.data["usage"] == {"prompt_tokens": 4, "total_tokens": 4}

    def test_response_base64(self) -> None:
        body = orjson.dumps(BODIES["gemini_batch_embed_contents"])
        request = embed(input=["hello", "world"], encoding_format="base64")
        result = GeminiProvider().parse_response(request, GEMINI, body)
        raw = base64.b64decode(result.data["data"][1]["embedding"])
        assert list(struct.unpack("<4f", raw)) == [-0.25, 0.125, 0.0, 1.0]

    def test_malformed_response(self) -> None:
        with pytest.raises(UpstreamError):
            GeminiProvider().parse_response(embed(input="x"), GEMINI, b'{"embeddings": [{}]}')


class TestVertex:
    def test_request(self) -> None:
        req = VertexAIProvider().build_request(
            embed(input=["hello", "world"], dimensions=256, task_type="RETRIEVAL_DOCUMENT"), VERTEX
        )
        assert req.url == (
            "https://us-central1-aiplatform.googleapis.com/v1/projects/p/locations/us-central1/"
            "publishers/google/models/text-embedding-005:predict"
        )
        assert req.headers["authorization"] == "Bearer ya29.t"
        assert orjson.loads(req.body or b"") == {
            "instances": [
                {"content": "hello", "task_type": "RETRIEVAL_DOCUMENT"},
                {"content": "world", "task_type": "RETRIEVAL_DOCUMENT"},
            ],
            "parameters": {"outputDimensionality": 256},
        }

    def test_response(self) -> None:
        body = orjson.dumps(BODIES["vertex_predict"])
        result = VertexAIProvider().parse_response(embed(input=["a", "b"]), VERTEX, body)
        assert [d["embedding"] for d in result.data["data"]] == [
            [0.0123, -0.0456, 0.0789, 0.5],
            [-0.25, 0.125, 0.0, 1.0],
        ]
        assert result.usage is not None and result.usage.prompt_tokens == 10

    def test_unsupported_parameter(self) -> None:
        with pytest.raises(InvalidRequest, match="'foo'"):
            VertexAIProvider().build_request(embed(input="x", foo=1), VERTEX)
