"""Messages-format clients: Anthropic request -> OpenAI request, OpenAI answer -> Anthropic
Message, error bodies (https://docs.anthropic.com/en/api/messages, .../errors)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import anthropic
import orjson
import pytest

from apps.core.errors import InvalidRequest
from apps.gateway.dialects.anthropic.request import (
    anthropic_request_to_openai,
    openai_response_to_anthropic,
)
from apps.providers.anthropic import AnthropicProvider
from apps.providers.schemas import CanonicalRequest, Op, Target

FIXTURES = Path(__file__).parents[3] / "fixtures" / "providers" / "anthropic"
TARGET = Target(deployment_id="d1", provider="anthropic", model="claude-sonnet-4-5-20250929")

TOOL = {
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
}
FULL_REQUEST: dict[str, Any] = {
    "model": "claude-group",
    "max_tokens": 1024,
    "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
    "messages": [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is in this image, and the weather?"},
                {
                    "type": "image",
                    "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="},
                },
                {"type": "image", "source": {"type": "url", "url": "https://example.com/a.jpg"}},
                {
                    "type": "document",
                    "source": {
                        "type": "base64",
                        "media_type": "application/pdf",
                        "data": "JVBERi0=",
                    },
                },
            ],
        },
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "Need the weather.", "signature": "sig"},
                {"type": "text", "text": "A cat. Checking the weather."},
                {
                    "type": "tool_use",
                    "id": "toolu_1",
                    "name": "get_weather",
                    "input": {"city": "Paris"},
                },
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C"},
                {"type": "text", "text": "And tomorrow?"},
            ],
        },
    ],
    "tools": [TOOL],
    "tool_choice": {"type": "auto", "disable_parallel_tool_use": True},
    "stop_sequences": ["END"],
    "temperature": 0.3,
    "top_p": 0.8,
    "top_k": 40,
    "metadata": {"user_id": "user-7"},
    "thinking": {"type": "enabled", "budget_tokens": 2048},
}


def test_request_to_openai() -> None:
    body = copy.deepcopy(FULL_REQUEST)
    out = anthropic_request_to_openai(body)
    assert body == FULL_REQUEST
    assert out["model"] == "claude-group"
    assert out["max_tokens"] == 1024
    assert out["messages"] == [
        {
            "role": "system",
            "content": [
                {"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is in this image, and the weather?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
                {"type": "image_url", "image_url": {"url": "https://example.com/a.jpg"}},
                {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBERi0="}},
            ],
        },
        {
            "role": "assistant",
            "content": "A cat. Checking the weather.",
            "tool_calls": [
                {
                    "id": "toolu_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                }
            ],
            "thinking_blocks": [
                {"type": "thinking", "thinking": "Need the weather.", "signature": "sig"}
            ],
        },
        {"role": "tool", "tool_call_id": "toolu_1", "content": "18C"},
        {"role": "user", "content": "And tomorrow?"},
    ]
    assert out["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "parameters": TOOL["input_schema"],
                "description": "Weather for a city",
            },
        }
    ]
    assert out["tool_choice"] == "auto"
    assert out["parallel_tool_calls"] is False
    assert out["stop"] == ["END"]
    assert out["temperature"] == 0.3 and out["top_p"] == 0.8
    assert out["user"] == "user-7"
    assert out["extra_body"] == {
        "top_k": 40,
        "thinking": {"type": "enabled", "budget_tokens": 2048},
    }
    assert "stream" not in out


def test_request_round_trips_through_the_anthropic_upstream() -> None:
    openai_body = anthropic_request_to_openai(FULL_REQUEST)
    upstream = AnthropicProvider().build_request(
        CanonicalRequest(op=Op.CHAT, body=openai_body), TARGET
    )
    sent = orjson.loads(upstream.body or b"")
    expected = {**FULL_REQUEST, "model": TARGET.model}
    # A user turn's tool_result blocks and text are regrouped the same way.
    assert sent == expected


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ({"type": "auto"}, {"tool_choice": "auto"}),
        ({"type": "any"}, {"tool_choice": "required"}),
        ({"type": "none"}, {"tool_choice": "none"}),
        (
            {"type": "tool", "name": "f"},
            {"tool_choice": {"type": "function", "function": {"name": "f"}}},
        ),
        (
            {"type": "any", "disable_parallel_tool_use": True},
            {"tool_choice": "required", "parallel_tool_calls": False},
        ),
    ],
)
def test_tool_choice(choice: dict[str, Any], expected: dict[str, Any]) -> None:
    body = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}
    out = anthropic_request_to_openai({**body, "tools": [TOOL], "tool_choice": choice})
    assert {k: out[k] for k in expected} == expected


def test_stream_structured_output_extras_and_gateway_fields() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    out = anthropic_request_to_openai(
        {
            "model": "m",
            "max_tokens": 5,
            "messages": [{"role": "user", "content": "x"}],
            "stream": True,
            "output_config": {"format": {"type": "json_schema", "schema": schema}, "effort": "low"},
            "service_tier": "auto",
            "tools": [{"type": "web_search_20250305", "name": "web_search"}],
            "mock_response": "canned",
            "fallbacks": ["other"],
            "metadata": {"user_id": None},
        }
    )
    assert out["stream"] is True
    assert out["stream_options"] == {"include_usage": True}
    assert out["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "output", "schema": schema, "strict": True},
    }
    assert out["extra_body"] == {"output_config": {"effort": "low"}, "service_tier": "auto"}
    assert out["tools"] == [{"type": "web_search_20250305", "name": "web_search"}]
    assert out["mock_response"] == "canned" and out["fallbacks"] == ["other"]
    assert "user" not in out


def test_tool_result_with_blocks_and_images() -> None:
    message = {
        "role": "user",
        "content": [
            {
                "type": "tool_result",
                "tool_use_id": "t1",
                "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
            },
            {
                "type": "tool_result",
                "tool_use_id": "t2",
                "content": [
                    {"type": "image", "source": {"type": "url", "url": "https://x/y.png"}},
                ],
                "cache_control": {"type": "ephemeral"},
            },
        ],
    }
    out = anthropic_request_to_openai({"model": "m", "max_tokens": 5, "messages": [message]})
    assert out["messages"] == [
        {"role": "tool", "tool_call_id": "t1", "content": "ab"},
        {
            "role": "tool",
            "tool_call_id": "t2",
            "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}],
            "cache_control": {"type": "ephemeral"},
        },
    ]


BASE = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ([], "body"),
        ({**BASE, "model": ""}, "model"),
        ({k: v for k, v in BASE.items() if k != "max_tokens"}, "max_tokens"),
        ({**BASE, "max_tokens": 0}, "max_tokens"),
        ({**BASE, "max_tokens": "5"}, "max_tokens"),
        ({**BASE, "max_tokens": True}, "max_tokens"),
        ({**BASE, "messages": []}, "messages"),
        ({**BASE, "messages": [{"role": "system", "content": "x"}]}, "messages.0.role"),
        ({**BASE, "messages": [{"role": "user", "content": 5}]}, "messages.0.content"),
        (
            {**BASE, "messages": [{"role": "user", "content": [{"text": "x"}]}]},
            "messages.0.content.0",
        ),
        (
            {**BASE, "messages": [{"role": "user", "content": [{"type": "tool_use", "id": "t"}]}]},
            "messages.0.content.0.type",
        ),
        (
            {**BASE, "messages": [{"role": "user", "content": [{"type": "tool_result"}]}]},
            "messages.0.content.0",
        ),
        (
            {
                **BASE,
                "messages": [{"role": "assistant", "content": [{"type": "tool_use", "name": "f"}]}],
            },
            "messages.0.content.0",
        ),
        ({**BASE, "system": 3}, "system"),
        ({**BASE, "system": [{"type": "image"}]}, "system.0"),
        ({**BASE, "tools": [{"name": "f"}]}, "tools.0.input_schema"),
        ({**BASE, "tools": {"name": "f"}}, "tools"),
        ({**BASE, "tool_choice": {"type": "sometimes"}}, "tool_choice.type"),
        ({**BASE, "tool_choice": {"type": "tool"}}, "tool_choice.name"),
        ({**BASE, "stop_sequences": "END"}, "stop_sequences"),
        ({**BASE, "temperature": "hot"}, "temperature"),
        ({**BASE, "stream": "yes"}, "stream"),
        ({**BASE, "metadata": {"user_id": 5}}, "metadata"),
    ],
)
def test_request_validation(body: Any, param: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        anthropic_request_to_openai(body)
    assert info.value.param == param
    assert info.value.http_status == 400


def openai_answer(
    message: dict[str, Any], finish: str = "stop", usage: Any = None
) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-4o",
        "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
        "usage": usage or {"prompt_tokens": 10, "completion_tokens": 3, "total_tokens": 13},
    }


def test_response_to_anthropic_text_and_usage() -> None:
    usage = {
        "prompt_tokens": 100,
        "completion_tokens": 7,
        "total_tokens": 107,
        "prompt_tokens_details": {"cached_tokens": 60},
        "cache_creation_input_tokens": 15,
    }
    data = openai_answer({"role": "assistant", "content": "Hello"}, usage=usage)
    message = openai_response_to_anthropic(data, "claude-group")
    assert message == {
        "id": "chatcmpl-1",
        "type": "message",
        "role": "assistant",
        "model": "claude-group",
        "content": [{"type": "text", "text": "Hello"}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 25,
            "output_tokens": 7,
            "cache_creation_input_tokens": 15,
            "cache_read_input_tokens": 60,
        },
    }
    anthropic.types.Message.model_validate(message)


def test_response_to_anthropic_tools_and_reasoning() -> None:
    data = openai_answer(
        {
            "role": "assistant",
            "content": None,
            "reasoning_content": "Thinking...",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "f", "arguments": '{"a": 1}'},
                },
                {
                    "id": "call_2",
                    "type": "function",
                    "function": {"name": "g", "arguments": "oops"},
                },
            ],
        },
        finish="tool_calls",
    )
    message = openai_response_to_anthropic(data, "m")
    assert message["content"] == [
        {"type": "thinking", "thinking": "Thinking...", "signature": ""},
        {"type": "tool_use", "id": "call_1", "name": "f", "input": {"a": 1}},
        {"type": "tool_use", "id": "call_2", "name": "g", "input": {"_raw": "oops"}},
    ]
    assert message["stop_reason"] == "tool_use"
    anthropic.types.Message.model_validate(message)


@pytest.mark.parametrize(
    ("finish", "stop_reason"),
    [
        ("stop", "end_turn"),
        ("length", "max_tokens"),
        ("tool_calls", "tool_use"),
        ("function_call", "tool_use"),
        ("content_filter", "refusal"),
        (None, "end_turn"),
    ],
)
def test_finish_reason_mapping(finish: str | None, stop_reason: str) -> None:
    data = openai_answer({"role": "assistant", "content": "x"}, finish=finish)  # type: ignore[arg-type]
    assert openai_response_to_anthropic(data, "m")["stop_reason"] == stop_reason


@pytest.mark.parametrize("name", ["message_tool_use.json", "message_thinking.json"])
def test_message_round_trip(name: str) -> None:
    original = orjson.loads((FIXTURES / name).read_bytes())
    result = AnthropicProvider().parse_response(
        CanonicalRequest(op=Op.CHAT, body={}), TARGET, (FIXTURES / name).read_bytes()
    )
    back = openai_response_to_anthropic(result.data, original["model"])
    assert back["content"] == original["content"]
    assert back["stop_reason"] == original["stop_reason"]
    assert back["usage"]["input_tokens"] == original["usage"]["input_tokens"]
    assert back["usage"]["output_tokens"] == original["usage"]["output_tokens"]
