"""OpenAI chunks -> Anthropic SSE events (https://docs.anthropic.com/en/api/messages-streaming),
checked event by event and by the official Anthropic SDK's stream accumulator."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anthropic
import orjson
import pytest

try:  # the transport library the installed SDK is built on
    import httpx2 as httpx
except ImportError:  # pragma: no cover - older SDKs
    import httpx  # type: ignore[no-redef]

from apps.core.errors import UpstreamError
from apps.gateway.dialects.anthropic.stream import OpenAIToAnthropicStream
from apps.providers.anthropic import AnthropicProvider
from apps.providers.schemas import CanonicalRequest, Op, Target, Usage
from apps.providers.sse import SSEParser

FIXTURES = Path(__file__).parents[3] / "fixtures" / "providers" / "anthropic"


def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "gpt-4o",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        **extra,
    }


def events(raw: bytes) -> list[tuple[str | None, dict[str, Any]]]:
    parser = SSEParser()
    return [(e.event, orjson.loads(e.data)) for e in parser.feed(raw) + parser.finish()]


def sdk_message(raw: bytes) -> anthropic.types.Message:
    """What the official SDK's stream helper assembles from these bytes."""

    def handler(request: Any) -> Any:
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=raw)

    client = anthropic.Anthropic(
        api_key="k",
        base_url="http://gateway.test",
        max_retries=0,
        http_client=httpx.Client(transport=httpx.MockTransport(handler)),
    )
    with client.messages.stream(
        model="m", max_tokens=10, messages=[{"role": "user", "content": "x"}]
    ) as stream:
        return stream.get_final_message()


def test_text_stream_events() -> None:
    encoder = OpenAIToAnthropicStream("claude-group", message_id="msg_test")
    raw = encoder.feed(chunk({"role": "assistant", "content": ""}))
    raw += encoder.feed(chunk({"content": "Hello"}))
    raw += encoder.feed(chunk({"content": " wörld 🎉"}))
    raw += encoder.feed(chunk({}, "stop"))
    raw += encoder.feed(
        {
            "id": "chatcmpl-1",
            "object": "chat.completion.chunk",
            "choices": [],
            "usage": {"prompt_tokens": 10, "completion_tokens": 3, "total_tokens": 13},
        }
    )
    raw += encoder.finish()
    parsed = events(raw)
    assert [name for name, _ in parsed] == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert all(name == data["type"] for name, data in parsed)
    start = parsed[0][1]["message"]
    assert start["id"] == "msg_test" and start["model"] == "claude-group" and start["content"] == []
    assert parsed[1][1] == {
        "type": "content_block_start",
        "index": 0,
        "content_block": {"type": "text", "text": ""},
    }
    assert parsed[2][1]["delta"] == {"type": "text_delta", "text": "Hello"}
    assert parsed[5][1] == {
        "type": "message_delta",
        "delta": {"stop_reason": "end_turn", "stop_sequence": None},
        "usage": {
            "input_tokens": 10,
            "output_tokens": 3,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        },
    }
    message = sdk_message(raw)
    assert message.content[0].type == "text"
    assert message.content[0].text == "Hello wörld 🎉"
    assert message.stop_reason == "end_turn"
    assert message.usage.output_tokens == 3


def test_tool_call_stream() -> None:
    encoder = OpenAIToAnthropicStream("m")
    first = {
        "index": 0,
        "id": "call_1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": ""},
    }
    raw = encoder.feed(chunk({"role": "assistant", "content": None, "tool_calls": [first]}))
    raw += encoder.feed(chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city"'}}]}))
    raw += encoder.feed(
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": ': "Paris"}'}}]})
    )
    second = {
        "index": 1,
        "id": "call_2",
        "type": "function",
        "function": {"name": "now", "arguments": "{}"},
    }
    raw += encoder.feed(chunk({"tool_calls": [second]}))
    raw += encoder.feed(chunk({}, "tool_calls"))
    raw += encoder.finish(Usage(prompt_tokens=20, completion_tokens=9, cached_tokens=5))
    parsed = events(raw)
    starts = [d for n, d in parsed if n == "content_block_start"]
    assert [s["content_block"] for s in starts] == [
        {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {}},
        {"type": "tool_use", "id": "call_2", "name": "now", "input": {}},
    ]
    assert [s["index"] for s in starts] == [0, 1]
    delta = next(d for n, d in parsed if n == "message_delta")
    assert delta["delta"]["stop_reason"] == "tool_use"
    assert delta["usage"] == {
        "input_tokens": 15,
        "output_tokens": 9,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 5,
    }
    message = sdk_message(raw)
    assert [(b.type, b.name, b.input) for b in message.content] == [  # type: ignore[union-attr]
        ("tool_use", "get_weather", {"city": "Paris"}),
        ("tool_use", "now", {}),
    ]


def test_reasoning_then_text_blocks() -> None:
    encoder = OpenAIToAnthropicStream("m")
    raw = encoder.feed(chunk({"role": "assistant", "reasoning_content": "Let me think."}))
    raw += encoder.feed(chunk({"reasoning_content": " Done."}))
    raw += encoder.feed(chunk({"content": "42"}, "stop"))
    raw += encoder.finish()
    names = [(n, d.get("index")) for n, d in events(raw)]
    assert names[1:6] == [
        ("content_block_start", 0),
        ("content_block_delta", 0),
        ("content_block_delta", 0),
        ("content_block_stop", 0),
        ("content_block_start", 1),
    ]
    message = sdk_message(raw)
    assert message.content[0].type == "thinking"
    assert message.content[0].thinking == "Let me think. Done."  # type: ignore[union-attr]
    assert message.content[1].text == "42"  # type: ignore[union-attr]


def test_empty_stream_and_double_finish() -> None:
    encoder = OpenAIToAnthropicStream("m")
    raw = encoder.finish()
    assert [n for n, _ in events(raw)] == ["message_start", "message_delta", "message_stop"]
    assert encoder.finish() == b""
    assert sdk_message(raw).content == []


@pytest.mark.parametrize(
    ("status", "error_type"),
    [
        (503, "overloaded_error"),
        (429, "rate_limit_error"),
        (502, "api_error"),
        (400, "invalid_request_error"),
    ],
)
def test_error_event(status: int, error_type: str) -> None:
    encoder = OpenAIToAnthropicStream("m")
    encoder.feed(chunk({"content": "partial"}))
    raw = encoder.error_event(UpstreamError("anthropic error: Overloaded", http_status=status))
    assert raw.startswith(b"event: error\ndata: ")
    assert events(raw) == [
        (
            "error",
            {
                "type": "error",
                "error": {"type": error_type, "message": "anthropic error: Overloaded"},
            },
        )
    ]
    assert encoder.finish() == b""


def test_error_event_for_unexpected_exceptions() -> None:
    raw = OpenAIToAnthropicStream("m").error_event(RuntimeError("boom"))
    assert events(raw)[0][1]["error"] == {"type": "api_error", "message": "boom"}


@pytest.mark.parametrize("name", ["stream_text.sse", "stream_tool_use.sse", "stream_thinking.sse"])
def test_anthropic_stream_round_trip(name: str) -> None:
    """Anthropic upstream stream -> OpenAI chunks -> Anthropic events: same message content."""
    raw = (FIXTURES / name).read_bytes()
    target = Target(deployment_id="d", provider="anthropic", model="claude-x")
    decoder = AnthropicProvider().new_stream_decoder(CanonicalRequest(op=Op.CHAT, body={}), target)
    encoder = OpenAIToAnthropicStream("claude-group")
    out = b""
    for piece in decoder.feed(raw) + decoder.finish():
        out += encoder.feed(piece.json())
    out += encoder.finish(decoder.usage)
    original = sdk_message(raw)
    relayed = sdk_message(out)
    strip = {"signature", "citations"}
    assert [b.model_dump(exclude=strip) for b in relayed.content] == [
        b.model_dump(exclude=strip) for b in original.content
    ]
    assert relayed.stop_reason == original.stop_reason
    assert relayed.usage.output_tokens == original.usage.output_tokens
    assert relayed.usage.input_tokens == original.usage.input_tokens
