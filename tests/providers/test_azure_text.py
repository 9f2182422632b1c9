"""``azure_text``: chat requests served by a completions deployment, both directions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from apps.core.errors import InvalidRequest, UpstreamError
from apps.providers.azure import AzureTextProvider
from apps.providers.schemas import CanonicalRequest, Op, Target, Usage

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "providers" / "azure"
PROVIDER = AzureTextProvider()
TARGET = Target(
    deployment_id="d",
    provider="azure_text",
    model="instruct",
    api_base="https://r.openai.azure.com",
    api_key="k",
)
MESSAGES = [
    {"role": "system", "content": "Be brief."},
    {
        "role": "user",
        "content": [{"type": "text", "text": "Tell me"}, {"type": "text", "text": " a joke"}],
    },
]


def chat(**body: Any) -> CanonicalRequest:
    full = {"model": "g", "messages": MESSAGES, **body}
    return CanonicalRequest(op=Op.CHAT, body=full, stream=bool(body.get("stream")))


def payload(req: CanonicalRequest, target: Target = TARGET) -> dict[str, Any]:
    return orjson.loads(PROVIDER.build_request(req, target).body)


class TestRequest:
    def test_chat_goes_to_completions(self) -> None:
        upstream = PROVIDER.build_request(chat(), TARGET)
        assert upstream.url == (
            "https://r.openai.azure.com/openai/deployments/instruct/completions"
            "?api-version=2024-10-21"
        )
        assert upstream.headers["api-key"] == "k"

    def test_prompt_and_params(self) -> None:
        body = payload(
            chat(
                temperature=0.5,
                max_completion_tokens=20,
                stop=["\n"],
                metadata={"x": 1},
                extra_body={"best_of": 2},
            )
        )
        assert body == {
            "model": "instruct",
            "prompt": "Be brief.\nTell me a joke",
            "temperature": 0.5,
            "max_tokens": 20,
            "stop": ["\n"],
            "best_of": 2,
        }

    def test_max_tokens_wins_over_max_completion_tokens(self) -> None:
        assert payload(chat(max_tokens=5, max_completion_tokens=9))["max_tokens"] == 5

    def test_stream_asks_for_usage(self) -> None:
        body = payload(chat(stream=True))
        assert body["stream"] is True and body["stream_options"] == {"include_usage": True}

    def test_unsupported_chat_param(self) -> None:
        tools = [{"type": "function", "function": {"name": "f"}}]
        with pytest.raises(InvalidRequest) as info:
            payload(chat(tools=tools))
        assert info.value.param == "tools"
        assert "azure_text" in info.value.message

    def test_unsupported_chat_param_dropped(self) -> None:
        req = chat(tools=[{"type": "function", "function": {"name": "f"}}])
        req.drop_params = True
        assert "tools" not in payload(req)

    def test_completions_pass_through(self) -> None:
        req = CanonicalRequest(op=Op.COMPLETIONS, body={"model": "g", "prompt": "x", "echo": True})
        upstream = PROVIDER.build_request(req, TARGET)
        assert "/deployments/instruct/completions?" in upstream.url
        assert orjson.loads(upstream.body) == {"model": "instruct", "prompt": "x", "echo": True}

    def test_embeddings_unsupported(self) -> None:
        req = CanonicalRequest(op=Op.EMBEDDINGS, body={"model": "g", "input": "x"})
        with pytest.raises(InvalidRequest):
            PROVIDER.build_request(req, TARGET)


class TestResponse:
    raw = orjson.dumps(orjson.loads((FIXTURES / "completions.json").read_bytes())["body"])

    def test_chat_shape(self) -> None:
        result = PROVIDER.parse_response(chat(), TARGET, self.raw)
        data = result.data
        assert data["object"] == "chat.completion"
        assert data["id"] == "cmpl-7QmVI15qgYVllxK0FtxVGG6ywfzaq"
        assert data["prompt_filter_results"][0]["prompt_index"] == 0
        choice = data["choices"][0]
        assert choice["message"] == {
            "role": "assistant",
            "content": "es\n\nWhat do you call a mango who's in charge?\n\nThe head mango.",
        }
        assert choice["finish_reason"] == "stop"
        assert choice["content_filter_results"]["hate"]["filtered"] is False
        assert result.usage == Usage(prompt_tokens=6, completion_tokens=20)
        assert orjson.loads(result.body()) == data

    def test_completions_unchanged(self) -> None:
        req = CanonicalRequest(op=Op.COMPLETIONS, body={"model": "g", "prompt": "x"})
        assert PROVIDER.parse_response(req, TARGET, self.raw).body() == self.raw

    def test_error_body_with_200(self) -> None:
        with pytest.raises(UpstreamError):
            PROVIDER.parse_response(chat(), TARGET, b'{"error": {"message": "boom"}}')


def decode(raw: bytes, step: int | None = None) -> tuple[list[dict[str, Any]], Usage | None]:
    decoder = PROVIDER.new_stream_decoder(chat(stream=True), TARGET)
    size = step or len(raw)
    chunks = []
    for start in range(0, len(raw), size):
        chunks += decoder.feed(raw[start : start + size])
    chunks += decoder.finish()
    return [c.json() for c in chunks], decoder.usage


class TestStream:
    raw = (FIXTURES / "stream_completions.sse").read_bytes()

    def test_chunks(self) -> None:
        chunks, usage = decode(self.raw)
        assert all(c["object"] == "chat.completion.chunk" for c in chunks)
        assert chunks[0]["choices"] == [] and "prompt_filter_results" in chunks[0]
        deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
        assert deltas[0] == {"role": "assistant", "content": "Héllo"}
        assert deltas[1] == {"content": " wörld"}
        assert "".join(d["content"] for d in deltas) == "Héllo wörld 🌍"
        assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
        assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] == 8
        assert usage == Usage(prompt_tokens=3, completion_tokens=5)

    @pytest.mark.parametrize("step", [1, 3, 7])
    def test_awkward_boundaries(self, step: int) -> None:
        assert decode(self.raw, step) == decode(self.raw)

    def test_error_event(self) -> None:
        raw = self.raw.split(b"\n\n")[1] + b'\n\ndata: {"error": {"message": "boom"}}\n\n'
        decoder = PROVIDER.new_stream_decoder(chat(stream=True), TARGET)
        with pytest.raises(UpstreamError) as info:
            decoder.feed(raw)
        assert info.value.message == "azure_text error: boom"

    def test_completions_stream_relayed(self) -> None:
        req = CanonicalRequest(op=Op.COMPLETIONS, body={"model": "g", "prompt": "x"}, stream=True)
        decoder = PROVIDER.new_stream_decoder(req, TARGET)
        chunks = decoder.feed(self.raw) + decoder.finish()
        assert chunks[1].json()["object"] == "text_completion"
        assert decoder.usage == Usage(prompt_tokens=3, completion_tokens=5)
