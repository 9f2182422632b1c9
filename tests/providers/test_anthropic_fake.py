"""The fake Anthropic upstream (tests/fakes/anthropic.py) against the official SDK, and the
translator against the fake over real loopback HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import aiohttp
import anthropic
import pytest

from apps.core.errors import UpstreamError
from apps.providers.anthropic import AnthropicProvider
from apps.providers.schemas import CanonicalRequest, Op, Result, StreamChunk, Target, Usage
from tests.fakes.anthropic import API_KEY, FakeAnthropic, make_app
from tests.fakes.server import BackgroundServer

USER = [{"role": "user", "content": "hello there"}]
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]


@pytest.fixture(scope="module")
def fake_server() -> Iterator[tuple[BackgroundServer, FakeAnthropic]]:
    app, fake = make_app()
    server = BackgroundServer(app)
    server.start()
    yield server, fake
    server.stop()


@pytest.fixture
def fake(fake_server: tuple[BackgroundServer, FakeAnthropic]) -> FakeAnthropic:
    fake_server[1].requests.clear()
    return fake_server[1]


@pytest.fixture
def sdk(fake_server: tuple[BackgroundServer, FakeAnthropic]) -> anthropic.Anthropic:
    return anthropic.Anthropic(api_key=API_KEY, base_url=fake_server[0].url, max_retries=0)


def test_sdk_reads_the_fake(sdk: anthropic.Anthropic, fake: FakeAnthropic) -> None:
    message = sdk.messages.create(model="claude-x", max_tokens=50, messages=USER)  # type: ignore[arg-type]
    assert message.content[0].text == "hello there"  # type: ignore[union-attr]
    assert message.stop_reason == "end_turn"
    assert API_KEY in fake.requests[-1].headers["authorization"]
    assert fake.requests[-1].body["max_tokens"] == 50
    with sdk.messages.stream(model="thinker", max_tokens=50, messages=USER) as stream:  # type: ignore[arg-type]
        final = stream.get_final_message()
    assert [b.type for b in final.content] == ["thinking", "text"]
    assert final.content[1].text == "hello there"  # type: ignore[union-attr]
    tool = {"name": "get_weather", "input_schema": {"type": "object"}}
    with sdk.messages.stream(
        model="tool-caller",
        max_tokens=50,
        messages=USER,  # type: ignore[arg-type]
        tools=[tool],  # type: ignore[list-item]
    ) as stream:
        final = stream.get_final_message()
    assert final.content[1].input == {"city": "Paris"}  # type: ignore[union-attr]
    assert final.stop_reason == "tool_use"


@pytest.mark.parametrize(
    ("model", "exc"),
    [
        ("error-400", anthropic.BadRequestError),
        ("error-403", anthropic.PermissionDeniedError),
        ("error-404", anthropic.NotFoundError),
        ("error-429", anthropic.RateLimitError),
        ("error-500", anthropic.InternalServerError),
        ("error-529", anthropic.InternalServerError),
    ],
)
def test_sdk_error_classes(sdk: anthropic.Anthropic, model: str, exc: type[Exception]) -> None:
    with pytest.raises(exc):
        sdk.messages.create(model=model, max_tokens=5, messages=USER)  # type: ignore[arg-type]


def test_sdk_sees_the_mid_stream_error(sdk: anthropic.Anthropic) -> None:
    stream_args: dict[str, Any] = {"model": "stream-error", "max_tokens": 5, "messages": USER}
    with (
        pytest.raises(anthropic.APIStatusError) as info,
        sdk.messages.stream(**stream_args) as stream,
    ):
        stream.get_final_message()
    assert "overloaded_error" in str(info.value.body)


async def call(
    server: BackgroundServer, body: dict[str, Any], *, stream: bool = False, key: str = API_KEY
) -> Result | tuple[list[StreamChunk], Usage | None]:
    """One request the way the gateway makes it: build, send, parse or decode."""
    provider = AnthropicProvider()
    target = Target(
        deployment_id="d",
        provider="anthropic",
        model=body.pop("upstream_model", "claude-x"),
        api_base=server.url,
        api_key=key,
    )
    request = CanonicalRequest(op=Op.CHAT, body={"model": "group", **body}, stream=stream)
    upstream = provider.build_request(request, target)
    async with (
        aiohttp.ClientSession() as session,
        session.request(
            upstream.method, upstream.url, headers=dict(upstream.headers), data=upstream.body
        ) as response,
    ):
        if response.status != 200:
            raise provider.parse_error(response.status, await response.read(), response.headers)
        if not stream:
            return provider.parse_response(request, target, await response.read())
        decoder = provider.new_stream_decoder(request, target)
        chunks: list[StreamChunk] = []
        async for piece in response.content.iter_chunked(7):
            chunks += decoder.feed(piece)
        chunks += decoder.finish()
        return chunks, decoder.usage


async def test_translator_against_fake(
    fake_server: tuple[BackgroundServer, FakeAnthropic], fake: FakeAnthropic
) -> None:
    server = fake_server[0]
    result = await call(server, {"messages": [{"role": "system", "content": "Be kind."}, *USER]})
    assert isinstance(result, Result)
    assert result.data["choices"][0]["message"]["content"] == "hello there"
    assert result.usage is not None and result.usage.completion_tokens == 2
    sent = fake.requests[-1]
    assert sent.path == "/v1/messages"
    assert sent.body["system"] == "Be kind."
    assert sent.headers["anthropic-version"] == "2023-06-01"

    outcome = await call(
        server, {"messages": USER, "tools": TOOLS, "upstream_model": "tool-caller"}, stream=True
    )
    assert isinstance(outcome, tuple)
    chunks, usage = outcome
    calls = [c for ch in chunks for c in ch.json()["choices"][0]["delta"].get("tool_calls", [])]
    assert calls[0]["function"]["name"] == "get_weather"
    assert json.loads("".join(c["function"]["arguments"] for c in calls)) == {"city": "Paris"}
    assert chunks[-1].json()["choices"][0]["finish_reason"] == "tool_calls"
    assert usage is not None and usage.prompt_tokens > 0

    # The tool result goes back as a tool_result block.
    follow_up = [
        *USER,
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": calls[0]["id"],
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": calls[0]["id"], "content": "18C"},
    ]
    result = await call(
        server, {"messages": follow_up, "tools": TOOLS, "upstream_model": "tool-caller"}
    )
    assert isinstance(result, Result)
    assert result.data["choices"][0]["message"]["content"] == "Result: 18C"


async def test_translator_errors_against_fake(
    fake_server: tuple[BackgroundServer, FakeAnthropic], fake: FakeAnthropic
) -> None:
    server = fake_server[0]
    with pytest.raises(UpstreamError) as info:
        await call(server, {"messages": USER}, key="wrong")
    assert info.value.http_status == 401 and not info.value.retryable
    with pytest.raises(UpstreamError) as info:
        await call(server, {"messages": USER, "upstream_model": "error-429"})
    assert info.value.http_status == 429 and info.value.headers["retry-after"] == "7"
    with pytest.raises(UpstreamError) as info:
        await call(server, {"messages": USER, "upstream_model": "error-529"})
    assert info.value.http_status == 503
    with pytest.raises(UpstreamError) as info:
        await call(server, {"messages": USER, "upstream_model": "error-context"})
    assert info.value.code == "context_length_exceeded"
    with pytest.raises(UpstreamError) as info:
        await call(server, {"messages": USER, "upstream_model": "stream-error"}, stream=True)
    assert info.value.http_status == 503
