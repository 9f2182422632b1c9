"""The event-stream framing decoder and the ConverseStream -> OpenAI chunk decoder, fed at
awkward byte boundaries."""

from __future__ import annotations

import json
import struct
import uuid
import zlib
from pathlib import Path
from typing import Any

import pytest
from botocore.eventstream import EventStreamBuffer

from apps.core.errors import UpstreamError
from apps.providers.bedrock import BedrockProvider
from apps.providers.bedrock.eventstream import EventStreamDecoder, EventStreamError
from apps.providers.schemas import CanonicalRequest, Op, Target
from tests.fakes.bedrock import encode_events, encode_message, event_frame, exception_frame

FIXTURES = Path(__file__).parent.parent / "fixtures" / "providers" / "bedrock"
MODEL = "anthropic.claude-3-5-sonnet-20240620-v1:0"
TARGET = Target(deployment_id="d1", provider="bedrock", model=MODEL)
REQUEST = CanonicalRequest(op=Op.CHAT, body={"model": "claude", "messages": []}, stream=True)
SPLITS = [0, 1, 3, 7]  # 0: the whole body at once


def fixture_stream(name: str) -> bytes:
    return encode_events(json.loads((FIXTURES / name).read_text())["events"])


def pieces(data: bytes, size: int) -> list[bytes]:
    if size == 0:
        return [data]
    return [data[i : i + size] for i in range(0, len(data), size)]


def decode(data: bytes, size: int) -> tuple[list[dict[str, Any]], Any]:
    decoder = BedrockProvider().new_stream_decoder(REQUEST, TARGET)
    chunks = []
    for piece in pieces(data, size):
        chunks.extend(decoder.feed(piece))
    chunks.extend(decoder.finish())
    return [c.json() for c in chunks], decoder.usage


def comparable(chunks: list[dict[str, Any]]) -> list[Any]:
    return [(c["choices"], c["model"], c["object"]) for c in chunks]


# ---- framing -------------------------------------------------------------------------------


@pytest.mark.parametrize("size", SPLITS)
def test_framing_at_any_boundary(size: int) -> None:
    data = fixture_stream("stream_text.json")
    decoder = EventStreamDecoder()
    messages = [m for piece in pieces(data, size) for m in decoder.feed(piece)]
    assert decoder.pending() == 0
    assert [m.header(":event-type") for m in messages] == [
        "messageStart",
        "contentBlockDelta",
        "contentBlockDelta",
        "contentBlockDelta",
        "contentBlockStop",
        "messageStop",
        "metadata",
    ]
    # botocore's own decoder reads the fake's frames the same way.
    reference = EventStreamBuffer()
    reference.add_data(data)
    assert [(m.headers, m.payload) for m in reference] == [(m.headers, m.payload) for m in messages]


def test_every_header_value_type() -> None:
    ident = uuid.UUID("12345678-1234-5678-1234-567812345678")

    def header(name: bytes, kind: int, value: bytes) -> bytes:
        return bytes([len(name)]) + name + bytes([kind]) + value

    headers = b"".join(
        [
            header(b"t", 0, b""),
            header(b"f", 1, b""),
            header(b"byte", 2, struct.pack(">b", -3)),
            header(b"short", 3, struct.pack(">h", 300)),
            header(b"int", 4, struct.pack(">i", -70000)),
            header(b"long", 5, struct.pack(">q", 2**40)),
            header(b"bytes", 6, struct.pack(">H", 3) + b"\x00\x01\x02"),
            header(b"str", 7, struct.pack(">H", 2) + "é".encode()),
            header(b"ts", 8, struct.pack(">q", 1718886645000)),
            header(b"id", 9, ident.bytes),
        ]
    )
    total = 16 + len(headers) + 2
    prelude = struct.pack(">II", total, len(headers))
    head = prelude + struct.pack(">I", zlib.crc32(prelude)) + headers + b"{}"
    frame = head + struct.pack(">I", zlib.crc32(head))
    (message,) = EventStreamDecoder().feed(frame)
    assert message.headers == {
        "t": True,
        "f": False,
        "byte": -3,
        "short": 300,
        "int": -70000,
        "long": 2**40,
        "bytes": b"\x00\x01\x02",
        "str": "é",
        "ts": 1718886645000,
        "id": ident,
    }
    assert message.payload == b"{}"


@pytest.mark.parametrize("offset", [2, 9, 20, -2])
def test_corrupted_bytes_fail_the_checksum(offset: int) -> None:
    frame = bytearray(encode_message({":message-type": "event"}, b'{"a": 1}'))
    frame[offset] ^= 0x01
    with pytest.raises(EventStreamError):
        EventStreamDecoder().feed(bytes(frame))


def test_corrupted_stream_is_a_502() -> None:
    frame = bytearray(event_frame("messageStart", {"role": "assistant"}))
    frame[-1] ^= 0xFF
    decoder = BedrockProvider().new_stream_decoder(REQUEST, TARGET)
    with pytest.raises(UpstreamError) as info:
        decoder.feed(bytes(frame))
    assert info.value.http_status == 502


def test_stream_cut_inside_a_message_fails_at_finish() -> None:
    data = fixture_stream("stream_text.json")
    decoder = BedrockProvider().new_stream_decoder(REQUEST, TARGET)
    decoder.feed(data[:-5])
    with pytest.raises(UpstreamError):
        decoder.finish()


# ---- chunks --------------------------------------------------------------------------------


def test_text_stream() -> None:
    data = fixture_stream("stream_text.json")
    chunks, usage = decode(data, 0)
    assert all(c["object"] == "chat.completion.chunk" and c["model"] == MODEL for c in chunks)
    assert len({c["id"] for c in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
    assert text == "Bonjour ! Ça va très bien, merci 👋"
    assert [c["choices"][0]["finish_reason"] for c in chunks][-1] == "stop"
    assert all(c["choices"][0]["finish_reason"] is None for c in chunks[:-1])
    assert "usage" not in chunks[-1]
    assert usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens, usage.cached_tokens) == (512, 9, 500)


@pytest.mark.parametrize("name", ["stream_text.json", "stream_tool_use.json"])
@pytest.mark.parametrize("size", SPLITS[1:])
def test_splits_give_identical_chunks(name: str, size: int) -> None:
    data = fixture_stream(name)
    whole, whole_usage = decode(data, 0)
    split, split_usage = decode(data, size)
    assert comparable(split) == comparable(whole)
    assert split_usage == whole_usage


def test_split_inside_multibyte_characters() -> None:
    data = fixture_stream("stream_text.json")
    cut = data.index("è".encode()) + 1  # between the two bytes of "è"
    cut_emoji = data.index("👋".encode()) + 2
    decoder = BedrockProvider().new_stream_decoder(REQUEST, TARGET)
    chunks = []
    for piece in (data[:cut], data[cut:cut_emoji], data[cut_emoji:]):
        chunks.extend(c.json() for c in decoder.feed(piece))
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
    assert text == "Bonjour ! Ça va très bien, merci 👋"


def test_tool_use_stream() -> None:
    chunks, usage = decode(fixture_stream("stream_tool_use.json"), 3)
    calls: dict[int, dict[str, Any]] = {}
    for chunk in chunks:
        for call in chunk["choices"][0]["delta"].get("tool_calls") or ():
            slot = calls.setdefault(call["index"], {"id": None, "name": None, "arguments": ""})
            slot["id"] = call.get("id") or slot["id"]
            slot["name"] = call.get("function", {}).get("name") or slot["name"]
            slot["arguments"] += call.get("function", {}).get("arguments") or ""
    assert calls == {
        0: {
            "id": "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q",
            "name": "get_weather",
            "arguments": '{"location": "Paris"}',
        },
        1: {
            "id": "tooluse_9Yw2dGq8T0ugnzsx4UMk1A",
            "name": "get_weather",
            "arguments": '{"location": "Zürich"}',
        },
    }
    first_call = next(c for c in chunks if c["choices"][0]["delta"].get("tool_calls"))
    assert first_call["choices"][0]["delta"]["tool_calls"][0]["type"] == "function"
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"
    assert usage is not None and usage.prompt_tokens == 402


def test_exception_event_raises_after_earlier_chunks() -> None:
    data = fixture_stream("stream_exception.json")
    decoder = BedrockProvider().new_stream_decoder(REQUEST, TARGET)
    boundary = data.index(b":exception-type") - 5  # inside the exception frame prelude
    chunks = decoder.feed(data[:boundary])
    assert [c.json()["choices"][0]["delta"].get("content") for c in chunks] == ["", "Partial "]
    with pytest.raises(UpstreamError) as info:
        decoder.feed(data[boundary:])
    error = info.value
    assert error.http_status == 429
    assert error.retryable
    assert error.code == "ThrottlingException"
    assert error.message == "bedrock error: Too many tokens, please wait before trying again."


def test_exception_in_the_same_bytes_as_chunks_is_raised_after_them() -> None:
    data = fixture_stream("stream_exception.json")
    decoder = BedrockProvider().new_stream_decoder(REQUEST, TARGET)
    chunks = decoder.feed(data)
    assert [c.json()["choices"][0]["delta"].get("content") for c in chunks] == ["", "Partial "]
    with pytest.raises(UpstreamError) as info:
        decoder.finish()
    assert info.value.http_status == 429
    with pytest.raises(UpstreamError):
        decoder.feed(b"")


@pytest.mark.parametrize(
    ("exception", "status", "retryable"),
    [
        ("modelStreamErrorException", 502, True),
        ("internalServerException", 502, True),
        ("serviceUnavailableException", 503, True),
        ("validationException", 400, False),
        ("modelTimeoutException", 408, True),
    ],
)
def test_stream_exception_types(exception: str, status: int, retryable: bool) -> None:
    decoder = BedrockProvider().new_stream_decoder(REQUEST, TARGET)
    with pytest.raises(UpstreamError) as info:
        decoder.feed(exception_frame(exception, "It broke."))
    assert (info.value.http_status, info.value.retryable) == (status, retryable)


def test_stream_validation_exception_for_long_input() -> None:
    decoder = BedrockProvider().new_stream_decoder(REQUEST, TARGET)
    with pytest.raises(UpstreamError) as info:
        decoder.feed(
            exception_frame("validationException", "Input is too long for requested model.")
        )
    assert info.value.code == "context_length_exceeded"


def test_error_message_type() -> None:
    frame = encode_message(
        {":message-type": "error", ":error-code": "InternalFailure", ":error-message": "Oops"},
        b"",
    )
    with pytest.raises(UpstreamError) as info:
        BedrockProvider().new_stream_decoder(REQUEST, TARGET).feed(frame)
    assert info.value.http_status == 502
    assert "Oops" in info.value.message
