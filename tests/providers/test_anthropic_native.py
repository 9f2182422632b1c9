"""Messages-format pass-through: request building and usage scanning
(https://docs.anthropic.com/en/api/messages, .../messages-streaming)."""

from __future__ import annotations

import copy
from pathlib import Path

import orjson
import pytest

from apps.providers.anthropic import AnthropicProvider, NativeUsageScanner
from apps.providers.schemas import Target, Usage

FIXTURES = Path(__file__).parent.parent / "fixtures" / "providers" / "anthropic"
TARGET = Target(
    deployment_id="d1",
    provider="anthropic",
    model="claude-sonnet-4-5-20250929",
    api_key="sk-ant-secret",
)


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def test_native_request_replaces_model_and_strips_gateway_fields() -> None:
    body = {
        "model": "my-group",
        "max_tokens": 100,
        "system": [{"type": "text", "text": "s", "cache_control": {"type": "ephemeral"}}],
        "messages": [{"role": "user", "content": "Hi"}],
        "metadata": {"user_id": "u-1", "team": "internal"},
        "thinking": {"type": "enabled", "budget_tokens": 2000},
        "stream": True,
        "mock_response": "x",
        "fallbacks": ["g2"],
        "num_retries": 1,
        "tags": ["t"],
        "guardrails": ["g"],
        "caching": True,
        "litellm_metadata": {},
        "drop_params": True,
        "extra_body": {"top_k": 3},
    }
    before = copy.deepcopy(body)
    upstream = AnthropicProvider().build_native_request(body, TARGET)
    assert body == before
    assert upstream.url == "https://api.anthropic.com/v1/messages"
    assert upstream.headers["x-api-key"] == "sk-ant-secret"
    assert upstream.headers["anthropic-version"] == "2023-06-01"
    sent = orjson.loads(upstream.body or b"")
    assert sent == {
        "model": "claude-sonnet-4-5-20250929",
        "max_tokens": 100,
        "system": body["system"],
        "messages": body["messages"],
        "metadata": {"user_id": "u-1"},
        "thinking": {"type": "enabled", "budget_tokens": 2000},
        "stream": True,
        "top_k": 3,
    }


def test_native_request_headers_and_defaults() -> None:
    target = Target(
        deployment_id="d1",
        provider="anthropic",
        model="claude-3-5-haiku-20241022",
        api_key="k",
        api_base="https://gw.example",
        headers={"anthropic-beta": "deployment-beta"},
    )
    body = {"model": "g", "messages": [{"role": "user", "content": "Hi"}], "metadata": {}}
    upstream = AnthropicProvider().build_native_request(
        body,
        target,
        client_headers={
            "Anthropic-Version": "2023-01-01",
            "anthropic-beta": "client-beta",
            "x-other": "1",
        },
    )
    assert upstream.url == "https://gw.example/v1/messages"
    assert upstream.headers["anthropic-version"] == "2023-01-01"
    assert upstream.headers["anthropic-beta"] == "deployment-beta"
    assert "x-other" not in upstream.headers
    sent = orjson.loads(upstream.body or b"")
    assert sent["max_tokens"] == 8192
    assert "metadata" not in sent


@pytest.mark.parametrize("step", [None, 1, 3, 7])
def test_scanner_relays_bytes_unchanged_and_reads_usage(step: int | None) -> None:
    raw = fixture("stream_text.sse")
    scanner = AnthropicProvider().native_stream_scanner()
    pieces = [raw] if step is None else [raw[i : i + step] for i in range(0, len(raw), step)]
    out = b"".join(scanner.feed(p) for p in pieces) + scanner.finish()
    assert out == raw
    assert scanner.usage == Usage(
        prompt_tokens=145, completion_tokens=15, cached_tokens=100, cache_creation_tokens=20
    )
    assert scanner.stop_reason == "end_turn"
    assert scanner.error is None


def test_scanner_records_an_error_event_without_raising() -> None:
    scanner = NativeUsageScanner()
    raw = fixture("stream_error.sse")
    assert scanner.feed(raw) == raw
    assert scanner.error is not None
    assert scanner.error.http_status == 503
    assert scanner.usage is not None and scanner.usage.prompt_tokens == 12


def test_scanner_before_any_usage() -> None:
    scanner = NativeUsageScanner()
    assert scanner.usage is None
    assert scanner.finish() == b""


def test_native_usage_of_a_message() -> None:
    usage = AnthropicProvider().native_usage(fixture("message_text.json"))
    assert usage == Usage(
        prompt_tokens=3995, completion_tokens=503, cached_tokens=1800, cache_creation_tokens=100
    )
    assert AnthropicProvider().native_usage(b"not json") == Usage()
    assert AnthropicProvider().native_usage(b"{}") == Usage()


def test_count_tokens_request_keeps_countable_fields() -> None:
    provider = AnthropicProvider()
    assert provider.native_format == "anthropic"
    body = {
        "model": "my-group",
        "max_tokens": 100,
        "stream": True,
        "temperature": 0.5,
        "metadata": {"user_id": "u"},
        "system": "s",
        "messages": [{"role": "user", "content": "Hi"}],
        "tools": [{"name": "f", "input_schema": {"type": "object"}}],
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "mock_response": "x",
    }
    upstream = provider.build_count_tokens_request(
        body, TARGET, client_headers={"anthropic-beta": "b"}
    )
    assert upstream.url == "https://api.anthropic.com/v1/messages/count_tokens"
    assert upstream.headers["x-api-key"] == "sk-ant-secret"
    assert upstream.headers["anthropic-beta"] == "b"
    assert orjson.loads(upstream.body or b"") == {
        "model": "claude-sonnet-4-5-20250929",
        "system": "s",
        "messages": body["messages"],
        "tools": body["tools"],
        "thinking": body["thinking"],
    }
