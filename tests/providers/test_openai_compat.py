"""OpenAI and OpenAI-compatible upstreams: the request passes through, chunks are relayed as
bytes, and only usage, errors and the end are parsed. Chunk shapes follow
https://platform.openai.com/docs/api-reference/chat-streaming."""

from __future__ import annotations

import orjson
import pytest

from apps.core.errors import UpstreamError, UpstreamUnavailable
from apps.providers.openai_compat import OpenAICompatibleProvider
from apps.providers.openai_stream import OpenAIStreamDecoder
from apps.providers.registry import get_provider
from apps.providers.schemas import CanonicalRequest, Op, Target

BASE = {
    "id": "chatcmpl-1",
    "object": "chat.completion.chunk",
    "created": 1,
    "model": "m",
    "usage": None,
}


def event(data: dict | str) -> bytes:
    payload = data.encode() if isinstance(data, str) else orjson.dumps(data)
    return b"data: " + payload + b"\n\n"


def content(text: str) -> bytes:
    return event(
        {**BASE, "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]}
    )


STOP = event({**BASE, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
USAGE = event(
    {
        **BASE,
        "choices": [],
        "usage": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10},
    }
)
DONE = event("[DONE]")
STREAM = content("Hé") + content("llo ✓") + STOP + USAGE + DONE


def splits(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def relay_all(parts: list[bytes], include_usage: bool) -> tuple[bytes, OpenAIStreamDecoder]:
    decoder = OpenAIStreamDecoder("openai")
    out = b"".join(decoder.relay(p, include_usage) for p in parts)
    return out + decoder.finish_relay(include_usage), decoder


@pytest.mark.parametrize("size", [1, 3, 7, 64, len(STREAM)])
@pytest.mark.parametrize("include_usage", [True, False])
def test_relay_gives_the_same_bytes_whatever_the_reads(size, include_usage):
    out, decoder = relay_all(splits(STREAM, size), include_usage)
    expected = content("Hé") + content("llo ✓") + STOP + (USAGE if include_usage else b"")
    assert out == expected
    assert decoder.usage is not None and decoder.usage.completion_tokens == 3
    assert decoder.usage_relayed is include_usage


def test_relay_forwards_whole_ordinary_reads_untouched():
    decoder = OpenAIStreamDecoder("openai")
    block = content("a") + content("b")
    assert decoder.relay(block, False) is block


class SpyDecoder(OpenAIStreamDecoder):
    """Records what goes through the event parser."""

    def __init__(self) -> None:
        super().__init__("openai")
        self.fed: list[bytes] = []

    def feed(self, data: bytes):  # type: ignore[no-untyped-def]
        self.fed.append(data)
        return super().feed(data)


def test_relay_parses_only_the_tail_of_a_read_that_ends_the_stream():
    decoder = SpyDecoder()
    out = decoder.relay(STREAM, True)
    assert out == content("Hé") + content("llo ✓") + STOP + USAGE
    assert decoder.fed == [USAGE + DONE]
    assert decoder.done and decoder.usage is not None and decoder.usage.total_tokens == 10


def test_relay_forwards_whole_events_and_keeps_a_partial_one_for_the_next_read():
    decoder = SpyDecoder()
    half = len(content("b")) // 2
    first = content("a") + content("b")[:half]
    assert decoder.relay(first, False) == content("a")
    assert decoder.fed == [content("b")[:half]]
    assert decoder.relay(content("b")[half:] + STOP + DONE, False) == content("b") + STOP
    assert decoder.done and decoder.finish_relay(False) == b""


def test_usage_in_every_chunk_is_parsed_and_the_last_one_wins():
    """Some OpenAI-compatible servers report running usage in every chunk."""
    running = [
        event({**BASE, "choices": [{"index": 0, "delta": {"content": w}}], "usage": u})
        for w, u in (
            ("a", {"prompt_tokens": 4, "completion_tokens": 1, "total_tokens": 5}),
            ("b", {"prompt_tokens": 4, "completion_tokens": 2, "total_tokens": 6}),
        )
    ]
    out, decoder = relay_all([b"".join(running) + STOP + DONE], False)
    assert out == b"".join(running) + STOP
    assert decoder.usage is not None and decoder.usage.completion_tokens == 2


def test_done_in_the_middle_of_a_read_ends_the_relay():
    out, decoder = relay_all([content("a") + DONE + content("late")], False)
    assert out == content("a") and decoder.done


@pytest.mark.parametrize("size", [1, 5, 1000])
def test_feed_parses_only_usage_and_keeps_raw_chunks(size):
    decoder = OpenAIStreamDecoder("openai")
    chunks = [c for part in splits(STREAM, size) for c in decoder.feed(part)]
    chunks += decoder.finish()
    assert [c.data is None for c in chunks] == [True, True, True, False]
    assert orjson.loads(chunks[1].raw)["choices"][0]["delta"]["content"] == "llo ✓"


def test_crlf_framing_is_understood():
    decoder = OpenAIStreamDecoder("openai")
    out = decoder.relay(STREAM.replace(b"\n", b"\r\n"), True)
    assert out + decoder.finish_relay(True) == content("Hé") + content("llo ✓") + STOP + USAGE


def test_error_event_after_chunks_is_raised_on_the_next_call():
    error = event({"error": {"message": "boom", "type": "server_error"}})
    decoder = OpenAIStreamDecoder("openai")
    assert decoder.relay(content("partial") + error, False) == content("partial")
    with pytest.raises(UpstreamError, match="boom"):
        decoder.finish_relay(False)


def test_error_event_first_is_raised_at_once():
    decoder = OpenAIStreamDecoder("openai")
    with pytest.raises(UpstreamError, match="boom"):
        decoder.feed(event({"error": {"message": "boom"}}))


def test_a_cut_stream_is_an_error_not_a_clean_end():
    decoder = OpenAIStreamDecoder("openai")
    decoder.relay(content("half an answ"), False)
    with pytest.raises(UpstreamUnavailable, match="ended before"):
        decoder.finish_relay(False)


def test_a_stream_without_done_but_with_a_finish_reason_is_whole():
    decoder = OpenAIStreamDecoder("openai")
    decoder.relay(content("x") + STOP, False)
    assert decoder.finish_relay(False) == b""


def test_last_chunk_gives_the_id_for_a_made_up_usage_chunk():
    decoder = OpenAIStreamDecoder("openai")
    decoder.relay(content("x") + STOP, True)
    last = decoder.last_chunk()
    assert last is not None and last.json()["id"] == "chatcmpl-1"


def _target(**kw) -> Target:
    return Target(
        deployment_id="d", provider="openai", model="gpt-4o-mini", api_key="sk-upstream", **kw
    )


def test_build_request_forwards_unknown_params_and_drops_gateway_fields():
    body = {
        "model": "group-name",
        "messages": [{"role": "user", "content": "hi"}],
        "stream": True,
        "metadata": {"team": "x"},
        "fallbacks": ["y"],
        "brand_new_param": {"a": 1},
        "extra_body": {"top_k": 3},
    }
    req = OpenAICompatibleProvider().build_request(
        CanonicalRequest(op=Op.CHAT, body=body, stream=True),
        _target(params={"organization": "org-1"}),
    )
    sent = orjson.loads(req.body)
    assert req.url == "https://api.openai.com/v1/chat/completions"
    assert req.headers["authorization"] == "Bearer sk-upstream"
    assert req.headers["openai-organization"] == "org-1"
    assert sent["model"] == "gpt-4o-mini"
    assert sent["stream_options"] == {"include_usage": True}
    assert sent["brand_new_param"] == {"a": 1} and sent["top_k"] == 3
    assert not {"metadata", "fallbacks", "extra_body"} & set(sent)
    assert body["model"] == "group-name"  # the client's body is never mutated


@pytest.mark.parametrize(
    ("name", "api_base", "url"),
    [
        ("groq", None, "https://api.groq.com/openai/v1/chat/completions"),
        ("ollama", "http://box:11434", "http://box:11434/v1/chat/completions"),
        ("ollama", "http://box:11434/v1/", "http://box:11434/v1/chat/completions"),
        ("hosted_vllm", "http://vllm:8000/v1", "http://vllm:8000/v1/chat/completions"),
        ("openrouter", None, "https://openrouter.ai/api/v1/chat/completions"),
    ],
)
def test_named_compatible_providers_use_their_bases(name, api_base, url):
    provider = get_provider(name)
    req = provider.build_request(
        CanonicalRequest(op=Op.CHAT, body={"model": "x", "messages": []}),
        Target(deployment_id="d", provider=name, model="m", api_base=api_base),
    )
    assert req.url == url


def test_a_provider_without_a_base_needs_one():
    with pytest.raises(Exception, match="api_base"):
        get_provider("hosted_vllm").build_request(
            CanonicalRequest(op=Op.CHAT, body={"model": "x", "messages": []}),
            Target(deployment_id="d", provider="hosted_vllm", model="m"),
        )


@pytest.mark.parametrize(
    ("status", "client_status", "retryable"),
    [
        (400, 400, False),
        (401, 401, False),
        (404, 404, False),
        (429, 429, True),
        (500, 502, True),
        (503, 503, True),
        (529, 503, True),
        (504, 504, True),
    ],
)
def test_errors_keep_the_upstream_message_and_map_the_status(status, client_status, retryable):
    body = orjson.dumps({"error": {"message": "nope", "type": "t", "code": "c"}})
    err = OpenAICompatibleProvider().parse_error(status, body, {"retry-after": "3"})
    assert (err.http_status, err.upstream_status, err.retryable) == (
        client_status,
        status,
        retryable,
    )
    assert err.message == "openai error: nope" and err.code == "c"
    assert err.headers == {"retry-after": "3"}


def test_a_non_json_error_body_still_becomes_an_error():
    err = OpenAICompatibleProvider().parse_error(502, b"<html>Bad gateway</html>", {})
    assert err.http_status == 502 and "Bad gateway" in err.message
