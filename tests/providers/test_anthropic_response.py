"""Anthropic Message -> OpenAI chat.completion (https://docs.anthropic.com/en/api/messages)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest

from apps.core.errors import UpstreamError
from apps.providers.anthropic import AnthropicProvider
from apps.providers.schemas import CanonicalRequest, Op, Target

FIXTURES = Path(__file__).parent.parent / "fixtures" / "providers" / "anthropic"
TARGET = Target(deployment_id="d1", provider="anthropic", model="claude-sonnet-4-5-20250929")
REQUEST = CanonicalRequest(op=Op.CHAT, body={"model": "g", "messages": []})


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def parse(body: bytes) -> Any:
    return AnthropicProvider().parse_response(REQUEST, TARGET, body)


def test_text_message_with_cache_usage() -> None:
    result = parse(fixture("message_text.json"))
    data = result.data
    assert data["id"] == "msg_013Zva2CMHLNnXjNJJKqJ2EF"
    assert data["object"] == "chat.completion"
    assert data["model"] == "claude-sonnet-4-5-20250929"
    assert isinstance(data["created"], int)
    choice = data["choices"][0]
    assert choice["index"] == 0
    assert choice["finish_reason"] == "stop"
    assert choice["message"] == {
        "role": "assistant",
        "content": "Hi! My name is Claude. Grüße — 🎉",
        "refusal": None,
    }
    # prompt = input + cache reads + cache writes
    assert data["usage"] == {
        "prompt_tokens": 2095 + 1800 + 100,
        "completion_tokens": 503,
        "total_tokens": 2095 + 1800 + 100 + 503,
        "prompt_tokens_details": {"cached_tokens": 1800},
        "cache_read_input_tokens": 1800,
        "cache_creation_input_tokens": 100,
    }
    usage = result.usage
    assert (usage.prompt_tokens, usage.completion_tokens) == (3995, 503)
    assert (usage.cached_tokens, usage.cache_creation_tokens) == (1800, 100)
    # The body the gateway sends is the translated dict, not the upstream bytes.
    assert orjson.loads(result.body())["object"] == "chat.completion"


def test_tool_use_message() -> None:
    data = parse(fixture("message_tool_use.json")).data
    choice = data["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    message = choice["message"]
    assert message["content"] == "I'll check the current weather in San Francisco for you."
    assert message["tool_calls"] == [
        {
            "id": "toolu_01A09q90qw90lq917835lq9",
            "type": "function",
            "function": {
                "name": "get_weather",
                "arguments": '{"location":"San Francisco, CA","unit":"celsius"}',
            },
        },
        {
            "id": "toolu_01B09q90qw90lq917835lq9",
            "type": "function",
            "function": {"name": "get_time", "arguments": "{}"},
        },
    ]
    assert json.loads(message["tool_calls"][0]["function"]["arguments"]) == {
        "location": "San Francisco, CA",
        "unit": "celsius",
    }
    assert data["usage"]["prompt_tokens_details"] == {"cached_tokens": 0}


def test_tool_only_message_has_null_content() -> None:
    body = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "m",
        "content": [{"type": "tool_use", "id": "t", "name": "f", "input": {}}],
        "stop_reason": "tool_use",
        "usage": {"input_tokens": 1, "output_tokens": 1},
    }
    assert parse(orjson.dumps(body)).data["choices"][0]["message"]["content"] is None


def test_thinking_message() -> None:
    result = parse(fixture("message_thinking.json"))
    message = result.data["choices"][0]["message"]
    assert message["content"] == "Yes, there are infinitely many prime numbers."
    assert message["reasoning_content"].startswith("To approach this")
    assert [b["type"] for b in message["thinking_blocks"]] == ["thinking", "redacted_thinking"]
    assert message["thinking_blocks"][0]["signature"].startswith("zbbJ")
    assert result.data["choices"][0]["finish_reason"] == "length"
    assert result.usage.reasoning_tokens == 250
    assert result.data["usage"]["completion_tokens_details"] == {"reasoning_tokens": 250}


@pytest.mark.parametrize(
    ("stop_reason", "finish"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
        ("pause_turn", "stop"),
        ("model_context_window_exceeded", "length"),
        (None, "stop"),
    ],
)
def test_stop_reason_mapping(stop_reason: str | None, finish: str) -> None:
    body = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "m",
        "content": [],
        "stop_reason": stop_reason,
        "usage": {"input_tokens": 1, "output_tokens": 0},
    }
    data = parse(orjson.dumps(body)).data
    assert data["choices"][0]["finish_reason"] == finish
    assert data["choices"][0]["message"]["content"] == ""


def test_error_object_in_a_success_body_raises() -> None:
    body = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    with pytest.raises(UpstreamError) as info:
        parse(orjson.dumps(body))
    assert info.value.http_status == 502
    assert "Overloaded" in info.value.message


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]"])
def test_malformed_body_raises(body: bytes) -> None:
    with pytest.raises(UpstreamError):
        parse(body)
