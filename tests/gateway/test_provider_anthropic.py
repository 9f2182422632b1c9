"""End to end: the official OpenAI SDK -> the gateway -> the fake Anthropic Messages API."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import openai
import orjson
import pytest
from aiohttp import web

from apps.usage.models import UsageLog
from tests.conftest import MASTER_KEY
from tests.fakes import anthropic as fake_anthropic
from tests.fakes.server import BackgroundServer
from tests.gateway.helpers import usage_rows

KEY = fake_anthropic.API_KEY
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


@pytest.fixture(scope="module")
def _anthropic_server() -> Iterator[tuple[BackgroundServer, fake_anthropic.FakeAnthropic]]:
    app, fake = fake_anthropic.make_app()
    server = BackgroundServer(app)
    server.start()
    yield server, fake
    server.stop()


@pytest.fixture
def fake(
    _anthropic_server: tuple[BackgroundServer, fake_anthropic.FakeAnthropic],
) -> fake_anthropic.FakeAnthropic:
    upstream = _anthropic_server[1]
    upstream.requests.clear()
    return upstream


@pytest.fixture
def claude_group(
    _anthropic_server: tuple[BackgroundServer, fake_anthropic.FakeAnthropic],
    make_deployment: Callable[..., Any],
) -> Callable[..., Any]:
    """Route model group ``group`` to the fake Anthropic API with upstream model ``model``."""
    server = _anthropic_server[0]

    def build(group: str = "claude", model: str = "claude-sonnet-4-5", **fields: Any) -> Any:
        fields.setdefault("api_base", server.url)
        fields.setdefault("api_key", KEY)
        return make_deployment(group, "anthropic", model, **fields)

    return build


def chat(client: openai.OpenAI, model: str, text: str, **kwargs: Any) -> Any:
    return client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": text}], **kwargs
    )


def test_text(gateway_server: Any, claude_group: Any, openai_client: Any, fake: Any) -> None:
    claude_group()
    reply = openai_client().chat.completions.create(
        model="claude",
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "hello claude"},
        ],
        temperature=0.3,
        max_tokens=50,
        stop=["END"],
        user="user-1",
    )
    assert reply.choices[0].message.content == "hello claude"
    assert reply.choices[0].finish_reason == "stop"
    assert reply.model == "claude-sonnet-4-5"
    assert reply.usage.prompt_tokens > 0 and reply.usage.completion_tokens == 2
    recorded = fake.requests[-1]
    assert recorded.path == "/v1/messages"
    assert recorded.headers["x-api-key"] == KEY
    assert recorded.headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in recorded.headers
    assert recorded.body == {
        "model": "claude-sonnet-4-5",
        "messages": [{"role": "user", "content": "hello claude"}],
        "system": "Be brief.",
        "max_tokens": 50,
        "stop_sequences": ["END"],
        "temperature": 0.3,
        "metadata": {"user_id": "user-1"},
    }
    gateway_server.flush_usage()
    row = UsageLog.objects.get()
    assert row.status_code == 200
    assert (row.prompt_tokens, row.completion_tokens) == (
        reply.usage.prompt_tokens,
        reply.usage.completion_tokens,
    )


def test_default_max_tokens(
    gateway_server: Any, claude_group: Any, openai_client: Any, fake: Any
) -> None:
    claude_group(model="claude-3-5-haiku-20241022")
    chat(openai_client(), "claude", "hi")
    assert fake.requests[-1].body["max_tokens"] == 8192


def test_stream(gateway_server: Any, claude_group: Any, openai_client: Any, fake: Any) -> None:
    claude_group()
    stream = chat(
        openai_client(),
        "claude",
        "the quick brown fox — façade 🌍",
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "the quick brown fox — façade 🌍"
    assert fake.requests[-1].body["stream"] is True
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "stop"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 7
    gateway_server.flush_usage()
    assert UsageLog.objects.get().completion_tokens == 7


def test_prompt_cache_usage(
    gateway_server: Any, claude_group: Any, openai_client: Any, fake: Any
) -> None:
    claude_group()
    system = [{"type": "text", "text": "Long manual", "cache_control": {"type": "ephemeral"}}]
    reply = openai_client().chat.completions.create(
        model="claude",
        messages=[{"role": "system", "content": system}, {"role": "user", "content": "hi"}],
    )
    assert fake.requests[-1].body["system"] == system
    # The fake reports 10 tokens read from and 5 written to the cache.
    assert reply.usage.prompt_tokens_details.cached_tokens == 10
    input_tokens = fake.message(fake.requests[-1].body)["usage"]["input_tokens"]
    assert reply.usage.prompt_tokens == input_tokens + 15
    gateway_server.flush_usage()
    row = UsageLog.objects.get()
    assert (row.cached_tokens, row.cache_creation_tokens) == (10, 5)


def test_tool_call_round_trip(
    gateway_server: Any, claude_group: Any, openai_client: Any, fake: Any
) -> None:
    claude_group(model="tool-caller")
    client = openai_client()
    messages: list[Any] = [{"role": "user", "content": "Weather in Paris?"}]
    first = client.chat.completions.create(
        model="claude", messages=messages, tools=[WEATHER_TOOL], tool_choice="required"
    )
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == "Let me check."
    (call,) = choice.message.tool_calls
    assert call.function.name == "get_weather"
    assert orjson.loads(call.function.arguments) == {"city": "Paris"}
    sent = fake.requests[-1].body
    assert sent["tools"][0]["input_schema"] == WEATHER_TOOL["function"]["parameters"]
    assert sent["tool_choice"] == {"type": "any"}

    messages += [
        choice.message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "21C and sunny"},
    ]
    second = client.chat.completions.create(model="claude", messages=messages, tools=[WEATHER_TOOL])
    assert second.choices[0].message.content == "Result: 21C and sunny"
    replay = fake.requests[-1].body["messages"]
    assert replay[1]["content"][1] == {
        "type": "tool_use",
        "id": call.id,
        "name": "get_weather",
        "input": {"city": "Paris"},
    }
    assert replay[2]["content"] == [
        {"type": "tool_result", "tool_use_id": call.id, "content": "21C and sunny"}
    ]


def test_streamed_tool_call(
    gateway_server: Any, claude_group: Any, openai_client: Any, fake: Any
) -> None:
    claude_group(model="tool-caller")
    stream = openai_client().chat.completions.create(
        model="claude",
        messages=[{"role": "user", "content": "Weather?"}],
        tools=[WEATHER_TOOL],
        parallel_tool_calls=False,
        stream=True,
    )
    chunks = list(stream)
    calls = [tc for c in chunks if c.choices for tc in c.choices[0].delta.tool_calls or ()]
    assert calls[0].id == "toolu_01FakeCall" and calls[0].function.name == "get_weather"
    assert {tc.index for tc in calls} == {0}
    assert orjson.loads("".join(tc.function.arguments or "" for tc in calls)) == {"city": "Paris"}
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"
    assert fake.requests[-1].body["tool_choice"] == {
        "type": "auto",
        "disable_parallel_tool_use": True,
    }


def test_reasoning(gateway_server: Any, claude_group: Any, openai_client: Any, fake: Any) -> None:
    claude_group(model="thinker")
    reply = chat(openai_client(), "claude", "think", reasoning_effort="low", max_tokens=2000)
    assert fake.requests[-1].body["thinking"] == {"type": "enabled", "budget_tokens": 1024}
    message = reply.choices[0].message
    assert message.content == "think"
    assert message.model_extra["reasoning_content"] == "Thinking about it."


def test_unsupported_parameter(
    gateway_server: Any, claude_group: Any, openai_client: Any, fake: Any
) -> None:
    claude_group()
    with pytest.raises(openai.BadRequestError) as info:
        chat(openai_client(), "claude", "hi", presence_penalty=0.5)
    assert "presence_penalty" in str(info.value.body)
    assert fake.requests == []
    claude_group("claude-lenient", extra_params={"drop_params": True})
    reply = chat(openai_client(), "claude-lenient", "hi", presence_penalty=0.5)
    assert reply.choices[0].message.content == "hi"
    assert "presence_penalty" not in fake.requests[-1].body


@pytest.mark.parametrize(
    ("model", "exception", "status"),
    [
        ("error-400", openai.BadRequestError, 400),
        ("error-401", openai.AuthenticationError, 401),
        ("error-403", openai.PermissionDeniedError, 403),
        ("error-404", openai.NotFoundError, 404),
        ("error-413", openai.APIStatusError, 413),
        ("error-429", openai.RateLimitError, 429),
        ("error-500", openai.InternalServerError, 502),
        ("error-504", openai.InternalServerError, 504),
        ("error-529", openai.InternalServerError, 503),
    ],
)
def test_errors(
    gateway_server: Any,
    claude_group: Any,
    openai_client: Any,
    model: str,
    exception: type[openai.APIStatusError],
    status: int,
) -> None:
    claude_group(model=model)
    with pytest.raises(exception) as info:
        chat(openai_client(), "claude", "hi")
    assert info.value.status_code == status
    assert KEY not in str(info.value.body)
    gateway_server.flush_usage()


def test_context_too_long(gateway_server: Any, claude_group: Any, openai_client: Any) -> None:
    claude_group(model="error-context")
    with pytest.raises(openai.BadRequestError) as info:
        chat(openai_client(), "claude", "a very long prompt")
    assert info.value.code == "context_length_exceeded"


def test_rate_limit_retry_after(gateway_server: Any, claude_group: Any, openai_client: Any) -> None:
    claude_group(model="error-429")
    with pytest.raises(openai.RateLimitError) as info:
        chat(openai_client(), "claude", "hi")
    assert info.value.response.headers.get("retry-after") == "7"


def test_wrong_upstream_key(gateway_server: Any, claude_group: Any, openai_client: Any) -> None:
    claude_group(api_key="not-the-key")
    with pytest.raises(openai.AuthenticationError) as info:
        chat(openai_client(), "claude", "hi")
    assert "not-the-key" not in str(info.value.body)


def test_midstream_error(gateway_server: Any, claude_group: Any, openai_client: Any) -> None:
    claude_group(model="stream-error")
    stream = chat(openai_client(), "claude", "first words", stream=True)
    received: list[str] = []
    with pytest.raises(openai.APIError):
        for chunk in stream:
            if chunk.choices:
                received.append(chunk.choices[0].delta.content or "")
    assert "".join(received) == "first words"


# --- Messages-format clients relayed natively (Anthropic SDK -> /v1/messages) -----------------


@pytest.fixture
def anthropic_sdk(gateway_server: Any) -> Callable[..., Any]:
    import anthropic

    def build(key: str = MASTER_KEY) -> anthropic.Anthropic:
        return anthropic.Anthropic(base_url=gateway_server.url, api_key=key, max_retries=0)

    return build


def test_native_messages(
    gateway_server: Any, claude_group: Any, anthropic_sdk: Any, fake: Any
) -> None:
    claude_group()
    message = anthropic_sdk().messages.create(
        model="claude",
        max_tokens=100,
        system=[{"type": "text", "text": "Manual", "cache_control": {"type": "ephemeral"}}],
        messages=[{"role": "user", "content": "hello native"}],
        extra_body={"top_k": 5},
        metadata={"user_id": "u-9"},
        extra_headers={"anthropic-beta": "some-beta-2025-01-01"},
    )
    assert message.content[0].text == "hello native"
    assert message.model == "claude-sonnet-4-5"
    assert message.usage.cache_read_input_tokens == 10
    sent = fake.requests[-1]
    assert sent.body["model"] == "claude-sonnet-4-5"
    assert sent.body["top_k"] == 5
    assert sent.body["metadata"] == {"user_id": "u-9"}
    assert sent.body["system"][0]["cache_control"] == {"type": "ephemeral"}
    assert sent.headers["x-api-key"] == KEY
    assert sent.headers["anthropic-beta"] == "some-beta-2025-01-01"
    assert MASTER_KEY not in str(sent.headers)
    gateway_server.flush_usage()
    row = UsageLog.objects.get()
    assert row.status_code == 200
    assert (row.cached_tokens, row.cache_creation_tokens) == (10, 5)
    assert row.prompt_tokens == message.usage.input_tokens + 15
    assert row.completion_tokens == message.usage.output_tokens


def test_native_stream_and_tools(
    gateway_server: Any, claude_group: Any, anthropic_sdk: Any, fake: Any
) -> None:
    claude_group(model="tool-caller")
    tool = {"name": "get_weather", "input_schema": WEATHER_TOOL["function"]["parameters"]}
    with anthropic_sdk().messages.stream(
        model="claude",
        max_tokens=100,
        messages=[{"role": "user", "content": "Weather?"}],
        tools=[tool],
    ) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "tool_use"
    assert final.content[1].input == {"city": "Paris"}
    assert fake.requests[-1].body["stream"] is True
    gateway_server.flush_usage()
    row = UsageLog.objects.get()
    assert row.stream and row.completion_tokens == final.usage.output_tokens


def test_native_errors(gateway_server: Any, claude_group: Any, anthropic_sdk: Any) -> None:
    import anthropic

    claude_group("claude-busy", "error-529")
    claude_group("claude-limited", "error-429")
    claude_group("claude-broken", "stream-error")
    client = anthropic_sdk()
    user = [{"role": "user", "content": "x"}]
    with pytest.raises(anthropic.InternalServerError) as busy:
        client.messages.create(model="claude-busy", max_tokens=5, messages=user)
    assert busy.value.body["error"]["type"] == "overloaded_error"
    with pytest.raises(anthropic.RateLimitError) as limited:
        client.messages.create(model="claude-limited", max_tokens=5, messages=user)
    assert limited.value.response.headers.get("retry-after") == "7"
    with (
        pytest.raises(anthropic.APIStatusError) as broken,
        client.messages.stream(model="claude-broken", max_tokens=5, messages=user) as stream,
    ):
        stream.get_final_message()
    assert "overloaded_error" in str(broken.value.body)


def test_native_count_tokens(
    gateway_server: Any, claude_group: Any, anthropic_sdk: Any, fake: Any
) -> None:
    claude_group()
    counted = anthropic_sdk().messages.count_tokens(
        model="claude", messages=[{"role": "user", "content": "count these words"}]
    )
    assert counted.input_tokens > 0
    assert fake.requests[-1].path == "/v1/messages/count_tokens"
    assert fake.requests[-1].body["model"] == "claude-sonnet-4-5"


def test_non_ascii_header_value_reaches_the_upstream_unchanged(
    claude_group: Any, gateway_http: Any, fake: Any
) -> None:
    """Regression: the value was read as Latin-1 and written as UTF-8 (double-encoded)."""
    claude_group()
    body = {"model": "claude", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}
    beta = "b\u00eata-\u00e9t\u00e9".encode()
    response = gateway_http.post("/v1/messages", json=body, headers={"anthropic-beta": beta})
    assert response.status_code == 200
    assert fake.requests[-1].headers["anthropic-beta"] == "b\u00eata-\u00e9t\u00e9"
    bad = gateway_http.post("/v1/messages", json=body, headers={"anthropic-beta": b"\xff\xfe"})
    assert bad.status_code == 400
    assert bad.json()["error"]["type"] == "invalid_request_error"
    assert "anthropic-beta" in bad.json()["error"]["message"]


def test_count_tokens_leaves_a_usage_row(
    gateway_server: Any, claude_group: Any, anthropic_sdk: Any, fake: Any
) -> None:
    claude_group()
    anthropic_sdk().messages.count_tokens(
        model="claude", messages=[{"role": "user", "content": "count these words"}]
    )
    [row] = usage_rows(gateway_server, 1)
    assert (row.call_type, row.status_code, row.model_group) == ("count_tokens", 200, "claude")
    assert row.deployment_id and row.cost == 0


def test_count_tokens_upstream_error_is_scrubbed(
    gateway_server: Any, make_deployment: Any, gateway_http: Any
) -> None:
    """Regression: count_tokens called the upstream without the pipeline's scrubbing, so an
    upstream quoting the deployment's key passed it on to the client."""
    secret = "sk-ant-deployment-secret-0123456789"

    async def echo_key(request: web.Request) -> web.Response:
        body = {
            "type": "error",
            "error": {
                "type": "authentication_error",
                "message": f"invalid x-api-key {request.headers.get('x-api-key')}",
            },
        }
        return web.json_response(body, status=401)

    app = web.Application()
    app.router.add_post("/v1/messages/count_tokens", echo_key)
    server = BackgroundServer(app)
    server.start()
    try:
        make_deployment("claude", "anthropic", "claude-x", api_base=server.url, api_key=secret)
        response = gateway_http.post(
            "/v1/messages/count_tokens",
            json={"model": "claude", "messages": [{"role": "user", "content": "hi"}]},
        )
    finally:
        server.stop()
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_error"
    assert secret not in response.text and "invalid x-api-key" in response.text
    [row] = usage_rows(gateway_server, 1)
    assert row.status_code == 401 and secret not in row.error_message
