"""OpenAI chat request -> Anthropic Messages request (https://docs.anthropic.com/en/api/messages);
tools and tool-call turns: test_anthropic_tools.py."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from apps.core.errors import InvalidRequest
from apps.providers.anthropic import AnthropicProvider
from apps.providers.schemas import CanonicalRequest, Op
from tests.providers.anthropic_request_support import (
    MODEL,
    TOOLS,
    USER,
    build,
    make_target,
    payload,
)


def test_url_headers_and_minimal_body() -> None:
    upstream, data = build({"messages": USER})
    assert upstream.method == "POST"
    assert upstream.url == "https://api.anthropic.com/v1/messages"
    assert upstream.headers["x-api-key"] == "sk-ant-secret"
    assert upstream.headers["anthropic-version"] == "2023-06-01"
    assert upstream.headers["content-type"] == "application/json"
    assert "authorization" not in upstream.headers
    assert data == {
        "model": MODEL,
        "messages": [{"role": "user", "content": "Hi"}],
        "max_tokens": 64_000,
    }
    assert b"sk-ant-secret" not in (upstream.body or b"")


@pytest.mark.parametrize(
    ("base", "url"),
    [
        ("https://proxy.example/anthropic", "https://proxy.example/anthropic/v1/messages"),
        ("https://proxy.example/v1/", "https://proxy.example/v1/messages"),
        ("https://proxy.example/v1/messages", "https://proxy.example/v1/messages"),
    ],
)
def test_api_base_forms(base: str, url: str) -> None:
    upstream, _ = build({"messages": USER}, target=make_target(api_base=base))
    assert upstream.url == url


def test_version_and_beta_headers_are_overridable() -> None:
    target = make_target(
        params={"anthropic_version": "2024-01-01"},
        headers={"Anthropic-Beta": "prompt-caching-2024-07-31", "X-Extra": "1"},
    )
    upstream, _ = build({"messages": USER}, target=target)
    assert upstream.headers["anthropic-version"] == "2024-01-01"
    assert upstream.headers["anthropic-beta"] == "prompt-caching-2024-07-31"
    assert upstream.headers["x-extra"] == "1"
    target = make_target(headers={"anthropic-version": "2099-01-01"})
    assert build({"messages": USER}, target=target)[0].headers["anthropic-version"] == "2099-01-01"


def test_system_and_developer_messages_become_top_level_system() -> None:
    data = payload(
        {
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Hi"},
                {"role": "developer", "content": [{"type": "text", "text": "Use French."}]},
            ]
        }
    )
    assert data["system"] == [
        {"type": "text", "text": "Be brief."},
        {"type": "text", "text": "Use French."},
    ]
    assert data["messages"] == [{"role": "user", "content": "Hi"}]
    single = payload({"messages": [{"role": "system", "content": "Be brief."}, *USER]})
    assert single["system"] == "Be brief."


def test_system_cache_control_keeps_blocks() -> None:
    data = payload(
        {
            "messages": [
                {
                    "role": "system",
                    "content": [
                        {"type": "text", "text": "Long doc", "cache_control": {"type": "ephemeral"}}
                    ],
                },
                {"role": "system", "content": "Rules", "cache_control": {"type": "ephemeral"}},
                *USER,
            ]
        }
    )
    assert data["system"] == [
        {"type": "text", "text": "Long doc", "cache_control": {"type": "ephemeral"}},
        {"type": "text", "text": "Rules", "cache_control": {"type": "ephemeral"}},
    ]


def test_consecutive_same_role_messages_are_merged() -> None:
    data = payload(
        {
            "messages": [
                {"role": "user", "content": "one"},
                {"role": "user", "content": [{"type": "text", "text": "two"}]},
                {"role": "assistant", "content": "three"},
                {"role": "assistant", "content": "four"},
                {"role": "user", "content": "five"},
            ]
        }
    )
    assert data["messages"] == [
        {
            "role": "user",
            "content": [{"type": "text", "text": "one"}, {"type": "text", "text": "two"}],
        },
        {
            "role": "assistant",
            "content": [{"type": "text", "text": "three"}, {"type": "text", "text": "four"}],
        },
        {"role": "user", "content": "five"},
    ]


def test_image_parts_and_pdf_files() -> None:
    content = [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg", "detail": "low"}},
        {
            "type": "file",
            "file": {"file_data": "data:application/pdf;base64,JVBERi0=", "filename": "a.pdf"},
        },
        {
            "type": "image_url",
            "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQ="},
            "cache_control": {"type": "ephemeral"},
        },
    ]
    data = payload({"messages": [{"role": "user", "content": content}]})
    assert data["messages"][0]["content"] == [
        {"type": "text", "text": "What is this?"},
        {
            "type": "image",
            "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="},
        },
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
        {
            "type": "document",
            "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="},
            "title": "a.pdf",
        },
        {
            "type": "image",
            "source": {"type": "base64", "media_type": "image/jpeg", "data": "/9j/4AAQ="},
            "cache_control": {"type": "ephemeral"},
        },
    ]


@pytest.mark.parametrize(
    "part",
    [
        {"type": "image_url", "image_url": {"url": "ftp://example.com/cat.jpg"}},
        {"type": "image_url", "image_url": {"url": "data:image/png,notbase64"}},
        {"type": "input_audio", "input_audio": {"data": "AAA", "format": "wav"}},
        {"type": "file", "file": {"file_id": "file-123"}},
        {"type": "file", "file": {"file_data": "data:text/csv;base64,YQ=="}},
    ],
)
def test_unsupported_content_parts_are_refused(part: dict[str, Any]) -> None:
    with pytest.raises(InvalidRequest) as info:
        build({"messages": [{"role": "user", "content": [part]}]})
    assert info.value.param is not None and info.value.param.startswith("messages[0].content[0]")


def test_assistant_thinking_blocks_are_sent_back_first() -> None:
    thinking = {"type": "thinking", "thinking": "hmm", "signature": "sig"}
    messages = [
        *USER,
        {"role": "assistant", "content": "Answer", "thinking_blocks": [thinking]},
        {"role": "user", "content": "More"},
    ]
    assert payload({"messages": messages})["messages"][1]["content"] == [
        thinking,
        {"type": "text", "text": "Answer"},
    ]


def test_unknown_role_is_refused() -> None:
    with pytest.raises(InvalidRequest) as info:
        build({"messages": [{"role": "function", "name": "f", "content": "x"}]})
    assert info.value.param == "messages[0].role"


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("claude-3-haiku-20240307", 4096),
        ("claude-3-opus-20240229", 4096),
        ("claude-3-5-sonnet-20241022", 8192),
        ("claude-3-5-haiku-20241022", 8192),
        ("claude-3-7-sonnet-20250219", 64_000),
        ("claude-sonnet-4-20250514", 64_000),
        ("claude-opus-4-20250514", 32_000),
        ("claude-opus-4-1-20250805", 32_000),
        ("claude-opus-4-5-20251101", 64_000),
        ("claude-haiku-4-5-20251001", 64_000),
        ("claude-sonnet-4-6", 128_000),
        ("some-future-model", 4096),
    ],
)
def test_max_tokens_default_from_model_table(model: str, expected: int) -> None:
    assert payload({"messages": USER}, target=make_target(model=model))["max_tokens"] == expected


def test_max_tokens_sources() -> None:
    assert payload({"messages": USER, "max_tokens": 100})["max_tokens"] == 100
    assert (
        payload({"messages": USER, "max_completion_tokens": 50, "max_tokens": 100})["max_tokens"]
        == 50
    )
    target = make_target(params={"max_tokens": 1234})
    assert payload({"messages": USER}, target=target)["max_tokens"] == 1234
    with pytest.raises(InvalidRequest) as info:
        build({"messages": USER, "max_tokens": 0})
    assert info.value.param == "max_tokens"


def test_sampling_stop_user_and_extra_body() -> None:
    data = payload(
        {
            "messages": USER,
            "temperature": 0.2,
            "top_p": 0.9,
            "stop": "END",
            "user": "user-42",
            "extra_body": {"top_k": 5, "service_tier": "auto"},
        }
    )
    assert data["temperature"] == 0.2
    assert data["top_p"] == 0.9
    assert data["top_k"] == 5
    assert data["stop_sequences"] == ["END"]
    assert data["metadata"] == {"user_id": "user-42"}
    assert data["service_tier"] == "auto"
    assert "extra_body" not in data and "stop" not in data and "user" not in data
    assert payload({"messages": USER, "stop": ["a", "b"]})["stop_sequences"] == ["a", "b"]


def test_gateway_only_fields_are_never_forwarded() -> None:
    body = {
        "messages": USER,
        "metadata": {"trace": "x"},
        "mock_response": "hi",
        "drop_params": True,
        "fallbacks": ["other"],
        "num_retries": 2,
        "caching": True,
        "tags": ["a"],
        "litellm_metadata": {"k": "v"},
        "guardrails": ["g"],
        "stream_options": {"include_usage": True},
    }
    data = payload(body)
    assert set(data) == {"model", "messages", "max_tokens"}


def test_thinking_passthrough_and_reasoning_effort() -> None:
    thinking = {"type": "enabled", "budget_tokens": 5000}
    assert payload({"messages": USER, "thinking": thinking})["thinking"] == thinking
    data = payload({"messages": USER, "extra_body": {"thinking": thinking}})
    assert data["thinking"] == thinking
    for effort, budget in (("low", 1024), ("medium", 2048), ("high", 4096)):
        data = payload({"messages": USER, "reasoning_effort": effort})
        assert data["thinking"] == {"type": "enabled", "budget_tokens": budget}
    # The budget stays below max_tokens.
    data = payload({"messages": USER, "reasoning_effort": "high", "max_tokens": 3000})
    assert data["thinking"] == {"type": "enabled", "budget_tokens": 2999}
    assert "thinking" not in payload({"messages": USER, "reasoning_effort": "none"})
    with pytest.raises(InvalidRequest) as info:
        build({"messages": USER, "reasoning_effort": "extreme"})
    assert info.value.param == "reasoning_effort"
    with pytest.raises(InvalidRequest):
        build({"messages": USER, "reasoning_effort": "low", "max_tokens": 500})


def test_response_format() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}
    data = payload(
        {
            "messages": USER,
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "x", "schema": schema},
            },
        }
    )
    assert data["output_config"] == {"format": {"type": "json_schema", "schema": schema}}
    assert "output_config" not in payload(
        {"messages": USER, "response_format": {"type": "json_object"}}
    )
    assert "output_config" not in payload({"messages": USER, "response_format": {"type": "text"}})


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("presence_penalty", 0.5),
        ("frequency_penalty", 0.5),
        ("seed", 7),
        ("logit_bias", {"50256": -100}),
        ("logprobs", True),
        ("n", 2),
    ],
)
def test_unsupported_params_are_refused_unless_dropped(param: str, value: Any) -> None:
    with pytest.raises(InvalidRequest) as info:
        build({"messages": USER, param: value})
    assert info.value.param == param
    assert "anthropic" in info.value.message
    assert param not in payload({"messages": USER, param: value}, drop=True)
    assert param not in payload(
        {"messages": USER, param: value}, target=make_target(drop_params=True)
    )


def test_noop_values_need_no_drop() -> None:
    data = payload({"messages": USER, "n": 1, "logprobs": False})
    assert "n" not in data and "logprobs" not in data


def test_additional_drop_params() -> None:
    target = make_target(additional_drop_params=("temperature", "top_k"))
    data = payload({"messages": USER, "temperature": 1, "extra_body": {"top_k": 3}}, target=target)
    assert "temperature" not in data and "top_k" not in data


def test_stream_flag() -> None:
    assert payload({"messages": USER}, stream=True)["stream"] is True
    assert "stream" not in payload({"messages": USER, "stream": False})


def test_request_body_is_not_mutated() -> None:
    body = {
        "model": "group",
        "messages": [
            {"role": "system", "content": "s", "cache_control": {"type": "ephemeral"}},
            {"role": "user", "content": [{"type": "text", "text": "hi"}]},
            {
                "role": "assistant",
                "tool_calls": [
                    {"id": "t", "type": "function", "function": {"name": "f", "arguments": "{}"}}
                ],
            },
            {
                "role": "tool",
                "tool_call_id": "t",
                "content": "r",
                "cache_control": {"type": "ephemeral"},
            },
        ],
        "tools": TOOLS,
        "tool_choice": {"type": "function", "function": {"name": "f"}},
        "parallel_tool_calls": False,
        "n": 1,
        "extra_body": {"top_k": 2},
    }
    before = copy.deepcopy(body)
    AnthropicProvider().build_request(CanonicalRequest(op=Op.CHAT, body=body), make_target())
    assert body == before


def test_other_operations_are_refused() -> None:
    request = CanonicalRequest(op=Op.EMBEDDINGS, body={"model": "g", "input": "x"})
    with pytest.raises(InvalidRequest):
        AnthropicProvider().build_request(request, make_target())
