"""Anthropic Messages stream -> OpenAI chunks
(https://docs.anthropic.com/en/api/messages-streaming), fed at awkward byte boundaries."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from apps.core.errors import UpstreamError
from apps.providers.anthropic import AnthropicProvider
from apps.providers.schemas import CanonicalRequest, Op, Target, Usage

FIXTURES = Path(__file__).parent.parent / "fixtures" / "providers" / "anthropic"
TARGET = Target(deployment_id="d1", provider="anthropic", model="claude-sonnet-4-5-20250929")
REQUEST = CanonicalRequest(op=Op.CHAT, body={"model": "g", "messages": []}, stream=True)
STEPS = [None, 1, 3, 7]


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def decode(raw: bytes, step: int | None) -> tuple[list[dict[str, Any]], Usage | None]:
    decoder = AnthropicProvider().new_stream_decoder(REQUEST, TARGET)
    pieces = [raw] if step is None else [raw[i : i + step] for i in range(0, len(raw), step)]
    chunks = []
    for piece in pieces:
        chunks += decoder.feed(piece)
    chunks += decoder.finish()
    out = []
    for chunk in chunks:
        data = dict(chunk.json())
        data.pop("created")
        out.append(data)
    return out, decoder.usage


def deltas(chunks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [c["choices"][0]["delta"] for c in chunks]


def text_of(chunks: list[dict[str, Any]], key: str = "content") -> str:
    return "".join(d.get(key) or "" for d in deltas(chunks))


@pytest.mark.parametrize("step", STEPS)
def test_text_stream(step: int | None) -> None:
    chunks, usage = decode(fixture("stream_text.sse"), step)
    assert chunks == decode(fixture("stream_text.sse"), None)[0]
    for chunk in chunks:
        assert chunk["id"] == "msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY"
        assert chunk["object"] == "chat.completion.chunk"
        assert chunk["model"] == "claude-sonnet-4-5-20250929"
    assert deltas(chunks)[0] == {"role": "assistant", "content": ""}
    assert text_of(chunks) == "Hello! Grüße — こんにちは 🎉"
    assert [c["choices"][0]["finish_reason"] for c in chunks] == [None, None, None, "stop"]
    assert deltas(chunks)[-1] == {}
    assert usage == Usage(
        prompt_tokens=25 + 100 + 20,
        completion_tokens=15,
        cached_tokens=100,
        cache_creation_tokens=20,
    )


@pytest.mark.parametrize("step", STEPS)
def test_tool_use_stream(step: int | None) -> None:
    chunks, usage = decode(fixture("stream_tool_use.sse"), step)
    assert chunks == decode(fixture("stream_tool_use.sse"), None)[0]
    assert text_of(chunks) == "Okay, let's check the weather."
    calls = [call for d in deltas(chunks) for call in d.get("tool_calls", [])]
    # The first chunk of each call carries index, id, type, name and empty arguments.
    assert calls[0] == {
        "index": 0,
        "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6",
        "type": "function",
        "function": {"name": "get_weather", "arguments": ""},
    }
    assert all(set(c) == {"index", "function"} for c in calls[1:4])
    assert calls[4]["index"] == 1 and calls[4]["id"] == "toolu_02Abc"
    assembled: dict[int, str] = {}
    for call in calls:
        assembled[call["index"]] = assembled.get(call["index"], "") + call["function"]["arguments"]
    assert json.loads(assembled[0]) == {"location": "San Francisco, CA", "unit": "fahrenheit"}
    assert json.loads(assembled[1]) == {"tz": "PST"}
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"
    assert usage is not None and (usage.prompt_tokens, usage.completion_tokens) == (472, 89)


@pytest.mark.parametrize("step", STEPS)
def test_thinking_stream(step: int | None) -> None:
    chunks, usage = decode(fixture("stream_thinking.sse"), step)
    assert text_of(chunks, "reasoning_content") == (
        "Let me solve this step by step:\n\n1. First break down 27 * 453\n2. 453 = 400 + 50 + 3"
    )
    assert text_of(chunks) == "27 * 453 = 12,231"
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert usage is not None and usage.completion_tokens == 120


@pytest.mark.parametrize("step", STEPS)
def test_error_event_raises(step: int | None) -> None:
    with pytest.raises(UpstreamError) as info:
        decode(fixture("stream_error.sse"), step)
    err = info.value
    assert err.http_status == 503
    assert err.upstream_status == 529
    assert err.retryable is True
    assert err.code == "overloaded_error"
    assert err.message == "anthropic error: Overloaded"


def test_chunks_before_the_error_are_delivered() -> None:
    decoder = AnthropicProvider().new_stream_decoder(REQUEST, TARGET)
    raw = fixture("stream_error.sse")
    head, tail = raw.split(b"event: error")
    chunks = decoder.feed(head)
    assert "".join(c.json()["choices"][0]["delta"].get("content", "") for c in chunks) == "Partial"
    with pytest.raises(UpstreamError):
        decoder.feed(b"event: error" + tail)


def test_error_in_the_same_read_is_raised_on_the_next_call() -> None:
    """Chunks that precede the error in one read are delivered first."""
    decoder = AnthropicProvider().new_stream_decoder(REQUEST, TARGET)
    chunks = decoder.feed(fixture("stream_error.sse"))
    assert "".join(c.json()["choices"][0]["delta"].get("content", "") for c in chunks) == "Partial"
    with pytest.raises(UpstreamError) as info:
        decoder.finish()
    assert info.value.http_status == 503
    decoder = AnthropicProvider().new_stream_decoder(REQUEST, TARGET)
    decoder.feed(fixture("stream_error.sse"))
    with pytest.raises(UpstreamError):
        decoder.feed(b"")


def test_error_in_the_final_flush_raises() -> None:
    decoder = AnthropicProvider().new_stream_decoder(REQUEST, TARGET)
    raw = fixture("stream_error.sse").rstrip(b"\n")
    decoder.feed(raw)
    with pytest.raises(UpstreamError):
        decoder.finish()


@pytest.mark.parametrize(
    ("error_type", "status"),
    [
        ("rate_limit_error", 429),
        ("api_error", 502),
        ("invalid_request_error", 400),
        ("timeout_error", 504),
        ("something_new", 502),
    ],
)
def test_error_event_types(error_type: str, status: int) -> None:
    decoder = AnthropicProvider().new_stream_decoder(REQUEST, TARGET)
    event = (
        b'event: error\ndata: {"type": "error", "error": {"type": "'
        + error_type.encode()
        + b'", "message": "boom"}}\n\n'
    )
    with pytest.raises(UpstreamError) as info:
        decoder.feed(event)
    assert info.value.http_status == status


def test_crlf_line_endings() -> None:
    raw = fixture("stream_text.sse").replace(b"\n", b"\r\n")
    assert decode(raw, 5)[0] == decode(fixture("stream_text.sse"), None)[0]


def test_truncated_stream_still_finishes_when_stop_reason_known() -> None:
    raw = fixture("stream_text.sse").split(b"event: message_stop")[0]
    chunks, _ = decode(raw, None)
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    no_delta = fixture("stream_text.sse").split(b"event: message_delta")[0]
    chunks, usage = decode(no_delta, None)
    assert all(c["choices"][0]["finish_reason"] is None for c in chunks)
    assert usage is not None and usage.completion_tokens == 1


def test_unknown_events_and_deltas_are_ignored() -> None:
    raw = (
        b'event: message_start\ndata: {"type":"message_start","message":{"id":"m","model":"x",'
        b'"usage":{"input_tokens":1,"output_tokens":1}}}\n\n'
        b'event: brand_new\ndata: {"type":"brand_new"}\n\n'
        b'event: content_block_start\ndata: {"type":"content_block_start","index":0,'
        b'"content_block":{"type":"server_tool_use","id":"s","name":"web_search","input":{}}}\n\n'
        b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
        b'"delta":{"type":"citations_delta","citation":{}}}\n\n'
        b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
        b'"delta":{"type":"input_json_delta","partial_json":"{}"}}\n\n'
    )
    chunks, _ = decode(raw, None)
    assert deltas(chunks) == [{"role": "assistant", "content": ""}]


def test_usage_is_none_before_message_start() -> None:
    decoder = AnthropicProvider().new_stream_decoder(REQUEST, TARGET)
    assert decoder.usage is None
    assert decoder.feed(b'event: ping\ndata: {"type": "ping"}\n\n') == []
