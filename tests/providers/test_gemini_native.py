"""Gemini / Vertex AI pass-through translation: URLs at the client's API version, usage of
native answers and streams."""

from __future__ import annotations

import orjson
import pytest

from apps.core.errors import InvalidRequest
from apps.providers.gemini import native
from apps.providers.gemini.provider import GeminiProvider, VertexAIProvider
from apps.providers.schemas import Target

USAGE = {"promptTokenCount": 7, "candidatesTokenCount": 5, "thoughtsTokenCount": 2}


def gemini(**fields: object) -> Target:
    return Target(deployment_id="d", provider="gemini", model="gemini-2.5-flash", **fields)  # type: ignore[arg-type]


def test_gemini_url_keeps_the_client_version_and_drops_the_key() -> None:
    url = GeminiProvider().native_url(
        gemini(api_base="https://g.example/v1beta"),
        "v1",
        "streamGenerateContent",
        {"alt": "sse", "key": "sk-gw"},
    )
    assert url == "https://g.example/v1/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    assert native.gemini_url(gemini(), "v1beta", "a/../b", "generateContent", {}) == (
        "https://generativelanguage.googleapis.com/v1beta/models/a%2F..%2Fb:generateContent"
    )


def test_vertex_url_uses_the_deployment_project_and_location() -> None:
    target = Target(
        deployment_id="d",
        provider="vertex_ai",
        model="gemini-2.5-pro",
        params={"vertex_project": "my proj", "vertex_location": "europe-west4"},
    )
    url = VertexAIProvider().native_url(target, "v1beta1", "generateContent", {})
    assert url == (
        "https://europe-west4-aiplatform.googleapis.com/v1beta1/projects/my%20proj/locations/"
        "europe-west4/publishers/google/models/gemini-2.5-pro:generateContent"
    )


def test_methods_outside_the_list_are_refused() -> None:
    native.check_method("generateContent")
    with pytest.raises(InvalidRequest):
        native.check_method("delete")


def test_native_body_drops_gateway_fields() -> None:
    body = {"contents": [], "metadata": {"a": 1}, "api_key": "k"}
    assert native.native_body(body) == {"contents": []}


def test_usage_of_a_complete_answer() -> None:
    usage = native.native_usage(orjson.dumps({"candidates": [], "usageMetadata": USAGE}))
    assert (usage.prompt_tokens, usage.completion_tokens, usage.reasoning_tokens) == (7, 7, 2)
    assert native.native_usage(b"not json").total_tokens == 0


def test_sse_stream_usage_split_anywhere() -> None:
    events = [
        {
            "candidates": [{"content": {"parts": [{"text": "a"}]}}],
            "usageMetadata": {"promptTokenCount": 7},
        },
        {"candidates": [{"content": {"parts": [{"text": "b"}]}}], "usageMetadata": USAGE},
    ]
    data = b"".join(b"data: " + orjson.dumps(e) + b"\r\n\r\n" for e in events)
    scanner = native.NativeStreamScanner("gemini", sse=True)
    out = b"".join(scanner.feed(data[i : i + 7]) for i in range(0, len(data), 7))
    assert out + scanner.finish() == data
    assert scanner.usage is not None and scanner.usage.completion_tokens == 7
    assert scanner.error is None


def test_stream_error_event_is_recorded() -> None:
    err = {"error": {"code": 503, "message": "overloaded", "status": "UNAVAILABLE"}}
    scanner = native.NativeStreamScanner("gemini", sse=True)
    scanner.feed(b"data: " + orjson.dumps(err) + b"\n\n")
    scanner.finish()
    assert scanner.error is not None and scanner.error.http_status == 503


def test_json_array_stream_is_read_at_the_end() -> None:
    scanner = native.NativeStreamScanner("gemini", sse=False)
    scanner.feed(
        orjson.dumps([{"usageMetadata": {"promptTokenCount": 1}}, {"usageMetadata": USAGE}])
    )
    scanner.finish()
    assert scanner.usage is not None and scanner.usage.prompt_tokens == 7


def test_a_query_in_api_base_stays_after_the_native_path() -> None:
    url = GeminiProvider().native_url(
        gemini(api_base="https://g.example/v1beta?route=eu"), "v1", "generateContent", {}
    )
    assert url == "https://g.example/v1/models/gemini-2.5-flash:generateContent?route=eu"
    streamed = native.gemini_url(
        gemini(api_base="https://g.example?route=eu"),
        "v1beta",
        "m",
        "streamGenerateContent",
        {"alt": "sse"},
    )
    assert streamed == "https://g.example/v1beta/models/m:streamGenerateContent?route=eu&alt=sse"


@pytest.mark.parametrize("model", ["..", ".", "a\r\nb", "a\x00b", "a\\b"])
def test_a_dot_segment_or_control_character_is_refused(model: str) -> None:
    with pytest.raises(InvalidRequest):
        native.gemini_url(gemini(), "v1beta", model, "generateContent", {})
