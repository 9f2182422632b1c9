"""The translators against the fake Gemini/Vertex upstream over real loopback HTTP (no gateway):
what they build is accepted, and what comes back parses."""

from __future__ import annotations

import dataclasses
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from apps.core.errors import UpstreamError
from apps.providers.gemini import GeminiProvider, VertexAIProvider
from apps.providers.schemas import CanonicalRequest, Op, Target, UpstreamRequest
from tests.fakes import gemini as fake_gemini
from tests.fakes.server import BackgroundServer, serve

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {
                "type": "object",
                "properties": {"location": {"type": "string"}},
                "required": ["location"],
                "additionalProperties": False,
            },
        },
    }
]


@pytest.fixture(scope="module")
def upstream() -> Iterator[tuple[BackgroundServer, fake_gemini.FakeGemini]]:
    app, fake = fake_gemini.make_app()
    with serve(app) as server:
        yield server, fake


def send(req: UpstreamRequest) -> tuple[int, bytes]:
    http = urllib.request.Request(
        req.url, data=req.body, headers=dict(req.headers), method=req.method
    )
    try:
        with urllib.request.urlopen(http, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def chat(messages: list[dict[str, Any]], stream: bool = False, **body: Any) -> CanonicalRequest:
    return CanonicalRequest(
        op=Op.CHAT, body={"model": "g", "messages": messages, **body}, stream=stream
    )


def gemini_target(server: BackgroundServer, model: str = "gemini-2.5-flash", **kw: Any) -> Target:
    return Target(
        deployment_id="d",
        provider="gemini",
        model=model,
        api_base=server.url + "/v1beta",
        api_key=kw.pop("api_key", "gemini-test-key"),
        **kw,
    )


def call(provider: Any, request: CanonicalRequest, target: Target) -> Any:
    status, body = send(provider.build_request(request, target))
    if status >= 400:
        raise provider.parse_error(status, body, {})
    if request.stream:
        decoder = provider.new_stream_decoder(request, target)
        chunks = []
        for start in range(0, len(body), 5):
            chunks += decoder.feed(body[start : start + 5])
        chunks += decoder.finish()
        return [c.json() for c in chunks], decoder.usage
    return provider.parse_response(request, target, body)


def test_text_round_trip(upstream: Any) -> None:
    server, fake = upstream
    result = call(
        GeminiProvider(), chat([{"role": "user", "content": "hello there"}]), gemini_target(server)
    )
    assert result.data["choices"][0]["message"]["content"] == "hello there"
    assert result.usage.prompt_tokens > 0
    recorded = fake.requests[-1]
    assert recorded.path == "/v1beta/models/gemini-2.5-flash:generateContent"
    assert recorded.headers["x-goog-api-key"] == "gemini-test-key"
    assert recorded.body["contents"] == [{"role": "user", "parts": [{"text": "hello there"}]}]


def test_stream_round_trip(upstream: Any) -> None:
    server, _ = upstream
    chunks, usage = call(
        GeminiProvider(),
        chat([{"role": "user", "content": "a b c"}], stream=True),
        gemini_target(server),
    )
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks) == "a b c"
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert usage.total_tokens > 0


def test_tool_call_round_trip_keeps_the_signature(upstream: Any) -> None:
    server, fake = upstream
    provider, target = GeminiProvider(), gemini_target(server)
    messages: list[dict[str, Any]] = [{"role": "user", "content": "Weather in Paris?"}]
    first = call(provider, chat(messages, tools=TOOLS), target)
    message = first.data["choices"][0]["message"]
    assert first.data["choices"][0]["finish_reason"] == "tool_calls"
    (tool_call,) = message["tool_calls"]
    assert orjson.loads(tool_call["function"]["arguments"]) == {"location": "Paris"}
    messages += [message, {"role": "tool", "tool_call_id": tool_call["id"], "content": '{"c": 21}'}]
    second = call(provider, chat(messages, tools=TOOLS), target)
    assert second.data["choices"][0]["message"]["content"] == 'Tool result: [{"c":21}]'
    replayed = fake.requests[-1].body["contents"][1]["parts"][0]
    assert replayed["thoughtSignature"] == fake_gemini.SIGNATURE
    assert fake.requests[-1].body["tools"][0]["functionDeclarations"][0]["parameters"] == {
        "type": "OBJECT",
        "properties": {"location": {"type": "STRING"}},
        "required": ["location"],
    }


@pytest.mark.parametrize(
    ("model", "status"),
    [
        ("error-400", 400),
        ("error-key", 401),
        ("error-403", 403),
        ("error-404", 404),
        ("error-429", 429),
        ("error-500", 502),
        ("error-503", 503),
        ("error-504", 504),
    ],
)
def test_errors(upstream: Any, model: str, status: int) -> None:
    server, _ = upstream
    with pytest.raises(UpstreamError) as info:
        call(
            GeminiProvider(), chat([{"role": "user", "content": "x"}]), gemini_target(server, model)
        )
    assert info.value.http_status == status


def test_wrong_api_key(upstream: Any) -> None:
    server, _ = upstream
    with pytest.raises(UpstreamError) as info:
        call(
            GeminiProvider(),
            chat([{"role": "user", "content": "x"}]),
            gemini_target(server, api_key="bad"),
        )
    assert info.value.http_status == 401
    assert "bad" not in info.value.message


def test_midstream_error(upstream: Any) -> None:
    server, _ = upstream
    with pytest.raises(UpstreamError) as info:
        call(
            GeminiProvider(),
            chat([{"role": "user", "content": "x y"}], stream=True),
            gemini_target(server, "stream-error"),
        )
    assert info.value.http_status == 503


def test_embeddings(upstream: Any) -> None:
    server, fake = upstream
    request = CanonicalRequest(
        op=Op.EMBEDDINGS, body={"model": "e", "input": ["a", "b"], "dimensions": 4}
    )
    result = call(GeminiProvider(), request, gemini_target(server, "gemini-embedding-001"))
    assert [len(d["embedding"]) for d in result.data["data"]] == [4, 4]
    assert fake.requests[-1].path.endswith(":batchEmbedContents")


def test_vertex_service_account_flow() -> None:
    app, fake = fake_gemini.make_app()
    with serve(app) as server:
        info, public_key = fake_gemini.generate_service_account(server.url + "/token")
        fake.public_key, fake.client_email = public_key, info["client_email"]
        provider = VertexAIProvider()
        target = Target(
            deployment_id="v",
            provider="vertex_ai",
            model="gemini-2.5-pro",
            api_base=server.url,
            params={
                "vertex_location": "europe-west1",
                "vertex_credentials": orjson.dumps(info).decode(),
            },
        )
        status, body = send(provider.build_token_request(target, time.time()))
        assert status == 200
        token, _ = provider.parse_token_response(body, 0.0)
        target = dataclasses.replace(target, access_token=token)
        result = call(provider, chat([{"role": "user", "content": "hi vertex"}]), target)
        assert result.data["choices"][0]["message"]["content"] == "hi vertex"
        assert fake.requests[-1].path == (
            "/v1/projects/fake-project/locations/europe-west1/publishers/google/models/"
            "gemini-2.5-pro:generateContent"
        )
        # A key that the fake does not trust is refused at the token endpoint.
        other, _ = fake_gemini.generate_service_account(server.url + "/token")
        forged = Target(
            deployment_id="v",
            provider="vertex_ai",
            model="gemini-2.5-pro",
            api_base=server.url,
            params={"vertex_credentials": {**other, "client_email": info["client_email"]}},
        )
        status, body = send(provider.build_token_request(forged, time.time()))
        assert status == 400
        assert provider.parse_error(status, body, {}).http_status == 401
