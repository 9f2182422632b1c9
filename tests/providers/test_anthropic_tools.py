"""OpenAI tools, tool_choice and tool-call turns -> Anthropic tool_use / tool_result blocks
(https://docs.anthropic.com/en/docs/agents-and-tools/tool-use/implement-tool-use)."""

from __future__ import annotations

from typing import Any

import pytest

from apps.core.errors import InvalidRequest
from tests.providers.anthropic_request_support import TOOLS, USER, build, payload


def test_tools_and_tool_choice() -> None:
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather for a city",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
                "strict": True,
            },
            "cache_control": {"type": "ephemeral"},
        },
        {"type": "function", "function": {"name": "no_params"}},
        {"type": "web_search_20250305", "name": "web_search", "max_uses": 3},
    ]
    data = payload({"messages": USER, "tools": tools, "tool_choice": "auto"})
    assert data["tools"] == [
        {
            "name": "get_weather",
            "description": "Weather for a city",
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
            "strict": True,
            "cache_control": {"type": "ephemeral"},
        },
        {"name": "no_params", "input_schema": {"type": "object", "properties": {}}},
        {"type": "web_search_20250305", "name": "web_search", "max_uses": 3},
    ]
    assert data["tool_choice"] == {"type": "auto"}


@pytest.mark.parametrize(
    ("choice", "parallel", "expected"),
    [
        ("auto", None, {"type": "auto"}),
        ("required", None, {"type": "any"}),
        ("none", None, {"type": "none"}),
        ({"type": "function", "function": {"name": "f"}}, None, {"type": "tool", "name": "f"}),
        (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
        ("required", False, {"type": "any", "disable_parallel_tool_use": True}),
        (
            {"type": "function", "function": {"name": "f"}},
            False,
            {"type": "tool", "name": "f", "disable_parallel_tool_use": True},
        ),
        ("none", False, {"type": "none"}),
        (None, True, None),
    ],
)
def test_tool_choice_mapping(choice: Any, parallel: Any, expected: Any) -> None:
    body: dict[str, Any] = {"messages": USER, "tools": TOOLS}
    if choice is not None:
        body["tool_choice"] = choice
    if parallel is not None:
        body["parallel_tool_calls"] = parallel
    assert payload(body).get("tool_choice") == expected


def test_invalid_tool_choice() -> None:
    with pytest.raises(InvalidRequest) as info:
        build({"messages": USER, "tools": TOOLS, "tool_choice": "sometimes"})
    assert info.value.param == "tool_choice"


def test_tool_call_round_trip_messages() -> None:
    messages = [
        {"role": "user", "content": "Weather in Paris and Rome?"},
        {
            "role": "assistant",
            "content": "Checking.",
            "tool_calls": [
                {
                    "id": "toolu_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                },
                {"id": "toolu_2", "type": "function", "function": {"name": "now", "arguments": ""}},
            ],
        },
        {"role": "tool", "tool_call_id": "toolu_1", "content": "18C"},
        {
            "role": "tool",
            "tool_call_id": "toolu_2",
            "content": [{"type": "text", "text": "noon"}],
            "cache_control": {"type": "ephemeral"},
        },
        {"role": "user", "content": "Thanks, and Rome?"},
    ]
    data = payload({"messages": messages, "tools": TOOLS})
    assert data["messages"] == [
        {"role": "user", "content": "Weather in Paris and Rome?"},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Checking."},
                {
                    "type": "tool_use",
                    "id": "toolu_1",
                    "name": "get_weather",
                    "input": {"city": "Paris"},
                },
                {"type": "tool_use", "id": "toolu_2", "name": "now", "input": {}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C"},
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_2",
                    "content": [{"type": "text", "text": "noon"}],
                    "cache_control": {"type": "ephemeral"},
                },
                {"type": "text", "text": "Thanks, and Rome?"},
            ],
        },
    ]


def test_tool_results_lead_a_merged_user_turn() -> None:
    messages = [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "t1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
            ],
        },
        {"role": "user", "content": "before"},
        {"role": "tool", "tool_call_id": "t1", "content": "done"},
    ]
    content = payload({"messages": messages})["messages"][1]["content"]
    assert [b["type"] for b in content] == ["tool_result", "text"]


@pytest.mark.parametrize("arguments", ["{not json", "[1, 2]", "42"])
def test_bad_tool_arguments_are_refused(arguments: str) -> None:
    messages = [
        *USER,
        {
            "role": "assistant",
            "tool_calls": [
                {"id": "t1", "type": "function", "function": {"name": "f", "arguments": arguments}}
            ],
        },
    ]
    with pytest.raises(InvalidRequest) as info:
        build({"messages": messages})
    assert info.value.param == "messages[1].tool_calls[0].function.arguments"
