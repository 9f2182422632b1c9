"""BedrockProvider.parse_response and parse_error over documented Converse bodies."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest

from apps.core.errors import UpstreamError
from apps.providers.bedrock import BedrockProvider
from apps.providers.schemas import CanonicalRequest, Op, Target

FIXTURES = Path(__file__).parent.parent / "fixtures" / "providers" / "bedrock"
MODEL = "anthropic.claude-3-5-sonnet-20240620-v1:0"
TARGET = Target(deployment_id="d1", provider="bedrock", model=MODEL)
REQUEST = CanonicalRequest(op=Op.CHAT, body={"model": "claude", "messages": []})


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def parse(body: bytes) -> dict[str, Any]:
    result = BedrockProvider().parse_response(REQUEST, TARGET, body)
    data = result.data
    assert data["usage"] == result.usage.to_openai() if result.usage else "usage" not in data
    return data


def test_text_response() -> None:
    data = parse(fixture_bytes("converse_text.json"))
    assert data["object"] == "chat.completion"
    assert data["id"].startswith("chatcmpl-")
    assert data["model"] == MODEL
    assert isinstance(data["created"], int)
    (choice,) = data["choices"]
    assert choice["message"] == {
        "role": "assistant",
        "content": "Bonjour ! Ça va très bien, merci 👋",
        "refusal": None,
    }
    assert choice["finish_reason"] == "stop"
    assert data["usage"] == {"prompt_tokens": 12, "completion_tokens": 9, "total_tokens": 21}


def test_tool_use_response() -> None:
    data = parse(fixture_bytes("converse_tool_use.json"))
    (choice,) = data["choices"]
    assert choice["finish_reason"] == "tool_calls"
    message = choice["message"]
    assert message["content"] == "I'll look up the weather in both cities."
    calls = message["tool_calls"]
    assert [c["id"] for c in calls] == [
        "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q",
        "tooluse_9Yw2dGq8T0ugnzsx4UMk1A",
    ]
    assert all(c["type"] == "function" and c["function"]["name"] == "get_weather" for c in calls)
    assert json.loads(calls[1]["function"]["arguments"]) == {
        "location": "Zürich",
        "unit": "celsius",
    }


def test_tool_only_response_has_null_content() -> None:
    body = {
        "output": {
            "message": {
                "role": "assistant",
                "content": [{"toolUse": {"toolUseId": "t1", "name": "now", "input": {}}}],
            }
        },
        "stopReason": "tool_use",
        "usage": {"inputTokens": 1, "outputTokens": 1, "totalTokens": 2},
    }
    message = parse(orjson.dumps(body))["choices"][0]["message"]
    assert message["content"] is None
    assert message["tool_calls"][0]["function"]["arguments"] == "{}"


def test_cache_usage_and_reasoning() -> None:
    result = BedrockProvider().parse_response(
        REQUEST, TARGET, fixture_bytes("converse_cache_reasoning.json")
    )
    assert result.usage is not None
    assert result.usage.prompt_tokens == 25 + 1800 + 248
    assert result.usage.completion_tokens == 64
    assert result.usage.cached_tokens == 1800
    assert result.usage.cache_creation_tokens == 248
    (choice,) = result.data["choices"]
    assert choice["finish_reason"] == "length"
    assert choice["message"]["content"] == "Here is the summary, cut short"
    assert choice["message"]["reasoning_content"] == "The user wants a summary."
    assert result.data["usage"]["prompt_tokens_details"] == {"cached_tokens": 1800}


@pytest.mark.parametrize(
    ("stop_reason", "finish"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("model_context_window_exceeded", "length"),
        ("tool_use", "tool_calls"),
        ("guardrail_intervened", "content_filter"),
        ("content_filtered", "content_filter"),
        ("malformed_model_output", "stop"),
    ],
)
def test_stop_reasons(stop_reason: str, finish: str) -> None:
    body = {
        "output": {"message": {"role": "assistant", "content": [{"text": "x"}]}},
        "stopReason": stop_reason,
        "usage": {"inputTokens": 1, "outputTokens": 1, "totalTokens": 2},
    }
    assert parse(orjson.dumps(body))["choices"][0]["finish_reason"] == finish


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"output": {}}', b'{"message": "x"}'])
def test_unusable_success_body_is_502(body: bytes) -> None:
    with pytest.raises(UpstreamError) as info:
        BedrockProvider().parse_response(REQUEST, TARGET, body)
    assert info.value.http_status == 502
    assert "bedrock" in info.value.message


# ---- errors --------------------------------------------------------------------------------

ERROR_CASES = json.loads(fixture_bytes("errors.json"))["cases"]


@pytest.mark.parametrize("case", ERROR_CASES, ids=[c["name"] for c in ERROR_CASES])
def test_error_mapping(case: dict[str, Any]) -> None:
    body = case["body"]
    raw = body.encode() if isinstance(body, str) else orjson.dumps(body)
    error = BedrockProvider().parse_error(case["status"], raw, case["headers"])
    expect = case["expect"]
    assert isinstance(error, UpstreamError)
    assert error.http_status == expect["http_status"]
    assert error.upstream_status == case["status"]
    assert error.code == expect["code"]
    assert error.retryable is expect["retryable"]
    assert error.message.startswith("bedrock error: ")
    if isinstance(body, dict):
        assert (body.get("message") or body.get("Message")) in error.message
    if "retry_after" in expect:
        assert error.headers == {"retry-after": expect["retry_after"]}


def test_signature_error_never_echoes_the_canonical_request() -> None:
    token = "FwoGZXIvYXdzSECRETSESSIONTOKEN"
    message = (
        "The request signature we calculated does not match the signature you provided. "
        "Check your AWS Secret Access Key and signing method.\n\nThe Canonical String for this "
        f"request should have been\n'POST\n/model/x/converse\n\nx-amz-security-token:{token}\n'"
        "\n\nThe String-to-Sign should have been\n'AWS4-HMAC-SHA256\n20240620T123045Z'"
    )
    headers = {"X-Amzn-ErrorType": "InvalidSignatureException:http://internal.amazon.com/"}
    error = BedrockProvider().parse_error(403, orjson.dumps({"message": message}), headers)
    assert error.http_status == 401
    assert token not in error.message
    assert "Canonical" not in error.message
    assert error.message.endswith("signing method.")


def test_empty_error_body() -> None:
    error = BedrockProvider().parse_error(500, b"", {})
    assert error.http_status == 502
    assert error.message == "bedrock error: HTTP 500"
    assert error.retryable
