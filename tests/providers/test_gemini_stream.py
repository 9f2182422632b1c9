"""Gemini SSE streams -> OpenAI chunks, fed whole and at awkward byte boundaries."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from apps.core.errors import UpstreamError
from apps.providers.gemini import GeminiProvider, VertexAIProvider
from apps.providers.schemas import CanonicalRequest, Op, Target

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "providers" / "gemini"
REQUEST = CanonicalRequest(
    op=Op.CHAT, body={"model": "g", "messages": [{"role": "user", "content": "hi"}]}, stream=True
)
TARGET = Target(deployment_id="d", provider="gemini", model="gemini-2.5-flash", api_key="k")


def decode(raw: bytes, step: int | None = None, provider: Any = None) -> tuple[list[dict], Any]:
    decoder = (provider or GeminiProvider()).new_stream_decoder(REQUEST, TARGET)
    chunks = []
    size = step or len(raw) or 1
    for start in range(0, len(raw), size):
        chunks += decoder.feed(raw[start : start + size])
    chunks += decoder.finish()
    return [c.json() for c in chunks], decoder.usage


def strip_volatile(chunks: list[dict]) -> list[dict]:
    """Chunks without the generated parts (created stamp, tool call ids)."""
    out = []
    for chunk in chunks:
        chunk = orjson.loads(orjson.dumps(chunk))
        chunk.pop("created")
        for choice in chunk["choices"]:
            for call in choice["delta"].get("tool_calls", ()):
                call["id"] = call["id"].partition("__thought__")[2]
        out.append(chunk)
    return out


def text_of(chunks: list[dict], key: str = "content") -> str:
    return "".join(c["choices"][0]["delta"].get(key) or "" for c in chunks if c["choices"])


class TestTextStream:
    raw = (FIXTURES / "stream_text.sse").read_bytes()

    def test_chunks(self) -> None:
        chunks, usage = decode(self.raw)
        assert all(c["object"] == "chat.completion.chunk" for c in chunks)
        assert {c["id"] for c in chunks} == {"chatcmpl-stream-text-1"}
        assert {c["model"] for c in chunks} == {"gemini-2.5-flash"}
        assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
        assert text_of(chunks) == "Héllo, wörld 🌍 — ça va? 日本語!"
        assert text_of(chunks, "reasoning_content") == "Thinking about accents"
        assert [c["choices"][0]["finish_reason"] for c in chunks][-1] == "stop"
        assert [c["choices"][0]["finish_reason"] for c in chunks][:-1] == [None] * (len(chunks) - 1)
        assert chunks[-1]["choices"][0]["delta"] == {}
        assert (usage.prompt_tokens, usage.completion_tokens) == (6, 24)
        assert (usage.reasoning_tokens, usage.cached_tokens) == (12, 2)

    @pytest.mark.parametrize("step", [1, 2, 3, 5, 7, 64])
    def test_byte_boundaries_give_identical_results(self, step: int) -> None:
        whole, usage = decode(self.raw)
        split, split_usage = decode(self.raw, step)
        assert strip_volatile(split) == strip_volatile(whole)
        assert split_usage == usage

    def test_split_inside_multibyte_characters(self) -> None:
        cut = self.raw.index("🌍".encode()) + 2
        decoder = GeminiProvider().new_stream_decoder(REQUEST, TARGET)
        chunks = decoder.feed(self.raw[:cut]) + decoder.feed(self.raw[cut:]) + decoder.finish()
        assert text_of([c.json() for c in chunks]) == "Héllo, wörld 🌍 — ça va? 日本語!"

    def test_missing_final_blank_line_is_flushed(self) -> None:
        chunks, _ = decode(self.raw.rstrip(b"\r\n"))
        assert chunks[-1]["choices"][0]["finish_reason"] == "stop"

    def test_vertex_decodes_the_same_stream(self) -> None:
        chunks, usage = decode(self.raw, 3, provider=VertexAIProvider())
        assert text_of(chunks) == "Héllo, wörld 🌍 — ça va? 日本語!"
        assert usage.completion_tokens == 24


class TestToolCallStream:
    raw = (FIXTURES / "stream_tool_calls.sse").read_bytes()

    @pytest.mark.parametrize("step", [None, 1, 3, 7])
    def test_tool_call_deltas(self, step: int | None) -> None:
        chunks, usage = decode(self.raw, step)
        calls = [call for c in chunks for call in c["choices"][0]["delta"].get("tool_calls", ())]
        assert [(c["index"], c["function"]["name"]) for c in calls] == [
            (0, "get_weather"),
            (1, "get_time"),
        ]
        assert orjson.loads(calls[0]["function"]["arguments"]) == {"location": "Paris"}
        assert calls[0]["id"].endswith("__thought__c2lnbmF0dXJl")
        assert all(c["type"] == "function" for c in calls)
        assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"
        assert usage.total_tokens == 50


class TestErrorsAndBlocks:
    @pytest.mark.parametrize("step", [None, 1, 7])
    def test_midstream_error_raises_after_partial_text(self, step: int | None) -> None:
        raw = (FIXTURES / "stream_midstream_error.sse").read_bytes()
        decoder = GeminiProvider().new_stream_decoder(REQUEST, TARGET)
        seen = []
        size = step or len(raw)
        with pytest.raises(UpstreamError) as info:
            for start in range(0, len(raw), size):
                seen += decoder.feed(raw[start : start + size])
            decoder.finish()
        assert text_of([c.json() for c in seen]) == "Partial answer"
        assert info.value.http_status == 503
        assert info.value.retryable
        assert "overloaded" in info.value.message
        assert info.value.message.startswith("gemini error:")

    def test_prompt_blocked(self) -> None:
        chunks, usage = decode((FIXTURES / "stream_prompt_blocked.sse").read_bytes())
        assert [c["choices"][0]["finish_reason"] for c in chunks] == [None, "content_filter"]
        assert usage.prompt_tokens == 5

    def test_malformed_event(self) -> None:
        decoder = GeminiProvider().new_stream_decoder(REQUEST, TARGET)
        with pytest.raises(UpstreamError):
            decoder.feed(b"data: {not json\n\n")

    def test_two_candidates_keep_their_indexes(self) -> None:
        events = [
            {
                "candidates": [
                    {"content": {"parts": [{"text": "a"}]}, "index": 0},
                    {"content": {"parts": [{"text": "b"}]}, "index": 1},
                ]
            },
            {
                "candidates": [
                    {"finishReason": "STOP", "index": 0},
                    {"finishReason": "MAX_TOKENS", "index": 1},
                ]
            },
        ]
        raw = b"".join(b"data: " + orjson.dumps(e) + b"\n\n" for e in events)
        chunks, usage = decode(raw)
        assert usage is None
        by_index: dict[int, list[dict]] = {}
        for c in chunks:
            by_index.setdefault(c["choices"][0]["index"], []).append(c["choices"][0])
        assert "".join(ch["delta"].get("content", "") for ch in by_index[1]) == "b"
        assert by_index[0][-1]["finish_reason"] == "stop"
        assert by_index[1][-1]["finish_reason"] == "length"
