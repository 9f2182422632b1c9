"""Azure OpenAI answers and streams: relayed untouched, filter results included."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from apps.core.errors import UpstreamError
from apps.providers.azure import AzureOpenAIProvider
from apps.providers.schemas import CanonicalRequest, Op, Target, Usage

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "providers" / "azure"
PROVIDER = AzureOpenAIProvider()
TARGET = Target(
    deployment_id="d", provider="azure", model="my-gpt4o", api_base="https://r", api_key="k"
)
CHAT = CanonicalRequest(op=Op.CHAT, body={"model": "g", "messages": []})
STREAM = CanonicalRequest(op=Op.CHAT, body={"model": "g", "messages": []}, stream=True)


def upstream_body(name: str) -> bytes:
    return orjson.dumps(orjson.loads((FIXTURES / name).read_bytes())["body"])


class TestResponses:
    def test_chat_passes_through(self) -> None:
        raw = upstream_body("chat_completion.json")
        result = PROVIDER.parse_response(CHAT, TARGET, raw)
        assert result.body() == raw
        assert result.data["prompt_filter_results"][0]["prompt_index"] == 0
        assert "content_filter_results" in result.data["choices"][0]
        assert result.usage == Usage(prompt_tokens=33, completion_tokens=557, cached_tokens=16)

    def test_filtered_output_passes_through(self) -> None:
        raw = upstream_body("chat_content_filter_finish.json")
        result = PROVIDER.parse_response(CHAT, TARGET, raw)
        choice = result.data["choices"][0]
        assert choice["finish_reason"] == "content_filter"
        assert choice["content_filter_results"]["violence"] == {
            "filtered": True,
            "severity": "medium",
        }
        assert result.usage == Usage(prompt_tokens=27, completion_tokens=75)

    def test_tool_calls(self) -> None:
        result = PROVIDER.parse_response(CHAT, TARGET, upstream_body("chat_tool_calls.json"))
        call = result.data["choices"][0]["message"]["tool_calls"][0]
        assert call["function"]["name"] == "get_current_weather"
        assert result.data["choices"][0]["finish_reason"] == "tool_calls"

    def test_completions(self) -> None:
        req = CanonicalRequest(op=Op.COMPLETIONS, body={"model": "g", "prompt": "x"})
        result = PROVIDER.parse_response(req, TARGET, upstream_body("completions.json"))
        assert result.data["object"] == "text_completion"
        assert result.usage == Usage(prompt_tokens=6, completion_tokens=20)

    def test_embeddings(self) -> None:
        req = CanonicalRequest(op=Op.EMBEDDINGS, body={"model": "g", "input": "x"})
        result = PROVIDER.parse_response(req, TARGET, upstream_body("embeddings.json"))
        assert result.data["data"][0]["embedding"][0] == pytest.approx(-0.012838088)
        assert result.usage == Usage(prompt_tokens=4)

    def test_invalid_json(self) -> None:
        with pytest.raises(UpstreamError) as info:
            PROVIDER.parse_response(CHAT, TARGET, b"<html>gateway timeout</html>")
        assert info.value.http_status == 502


def decode(raw: bytes, step: int | None = None) -> tuple[list[dict[str, Any]], Usage | None]:
    decoder = PROVIDER.new_stream_decoder(STREAM, TARGET)
    chunks = []
    size = step or len(raw) or 1
    for start in range(0, len(raw), size):
        chunks += decoder.feed(raw[start : start + size])
    chunks += decoder.finish()
    return [c.json() for c in chunks], decoder.usage


def text_of(chunks: list[dict[str, Any]]) -> str:
    return "".join(
        c["choices"][0]["delta"].get("content") or "" for c in chunks if c.get("choices")
    )


class TestStream:
    raw = (FIXTURES / "stream_chat.sse").read_bytes()

    def test_chunks(self) -> None:
        chunks, usage = decode(self.raw)
        first = chunks[0]
        assert first["choices"] == [] and first["id"] == ""
        assert first["prompt_filter_results"][0]["content_filter_results"]["jailbreak"] == {
            "filtered": False,
            "detected": False,
        }
        assert text_of(chunks) == "Héllo, wörld 🌍 — ça va? 日本語!"
        assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
        assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] == 21
        assert usage == Usage(prompt_tokens=9, completion_tokens=12)
        assert len(chunks) == 7

    def test_chunks_relayed_byte_for_byte(self) -> None:
        decoder = PROVIDER.new_stream_decoder(STREAM, TARGET)
        chunks = decoder.feed(self.raw) + decoder.finish()
        events = [e[len(b"data: ") :] for e in self.raw.split(b"\n\n") if e]
        assert [c.payload() for c in chunks] == events[:-1]  # all but [DONE]

    @pytest.mark.parametrize("step", [1, 3, 7])
    def test_awkward_boundaries(self, step: int) -> None:
        assert decode(self.raw, step) == decode(self.raw)

    def test_split_inside_utf8(self) -> None:
        cut = self.raw.index("🌍".encode()) + 2
        decoder = PROVIDER.new_stream_decoder(STREAM, TARGET)
        chunks = decoder.feed(self.raw[:cut]) + decoder.feed(self.raw[cut:]) + decoder.finish()
        assert text_of([c.json() for c in chunks]) == "Héllo, wörld 🌍 — ça va? 日本語!"

    def test_crlf(self) -> None:
        assert decode(self.raw.replace(b"\n", b"\r\n"), 5) == decode(self.raw)

    def test_nothing_after_done(self) -> None:
        extra = self.raw + b'data: {"id":"late","choices":[]}\n\n'
        assert decode(extra) == decode(self.raw)

    def test_midstream_error(self) -> None:
        raw = (FIXTURES / "stream_midstream_error.sse").read_bytes()
        decoder = PROVIDER.new_stream_decoder(STREAM, TARGET)
        with pytest.raises(UpstreamError) as info:
            for start in range(0, len(raw), 7):
                decoder.feed(raw[start : start + 7])
        assert info.value.http_status == 502
        assert info.value.message.startswith("azure error: The server had an error")
