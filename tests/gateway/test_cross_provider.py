"""One client program, six providers: the official OpenAI SDK on /v1/chat/completions and the
official Anthropic SDK on /v1/messages get equivalent answers, streams, tool calls, errors and
billed usage from the OpenAI, Azure, Anthropic, Gemini, Vertex AI and Bedrock fakes, the only
change being the model name (see cross_provider_support.py for the table of routes)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import anthropic
import openai
import pytest

from tests.conftest import MASTER_KEY, GatewayProcess
from tests.gateway.cross_provider_support import (
    ROUTES,
    Route,
    assert_billed,
    assert_refused,
    deploy,  # noqa: F401  (fixture)
    upstreams,  # noqa: F401  (fixture)
)

PROMPT = "What is the weather like in Paris today"
TOOL_RESULT = "18 C and sunny"
WEATHER_SCHEMA = {
    "type": "object",
    "properties": {"location": {"type": "string", "description": "A city name"}},
    "required": ["location"],
}
OPENAI_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": WEATHER_SCHEMA,
    },
}
ANTHROPIC_TOOL = {
    "name": "get_weather",
    "description": "Current weather for a city",
    "input_schema": WEATHER_SCHEMA,
}
USER = {"role": "user", "content": PROMPT}


@pytest.fixture(params=ROUTES, ids=lambda r: r.name)
def route(request: pytest.FixtureRequest, deploy: Callable[[Route], Route]) -> Route:  # noqa: F811
    return deploy(request.param)


@pytest.fixture
def oai(gateway_server: GatewayProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway_server.url + "/v1", api_key=MASTER_KEY, max_retries=0)


@pytest.fixture
def claude(gateway_server: GatewayProcess) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gateway_server.url, api_key=MASTER_KEY, max_retries=0)


def openai_tokens(usage: Any) -> tuple[int, int]:
    return usage.prompt_tokens, usage.completion_tokens


def anthropic_tokens(usage: Any) -> tuple[int, int]:
    """Anthropic's input_tokens excludes cache reads and writes; usage rows count them in."""
    cached = (usage.cache_read_input_tokens or 0) + (usage.cache_creation_input_tokens or 0)
    return usage.input_tokens + cached, usage.output_tokens


# --- the OpenAI SDK ---------------------------------------------------------------------------


def test_openai_text(gateway_server: GatewayProcess, route: Route, oai: openai.OpenAI) -> None:
    reply = oai.chat.completions.create(model=route.group, messages=[USER])
    assert reply.choices[0].message.content == route.reply_to(PROMPT)
    assert reply.choices[0].finish_reason == "stop"
    assert_billed(gateway_server, route, [openai_tokens(reply.usage)])


def test_openai_stream(gateway_server: GatewayProcess, route: Route, oai: openai.OpenAI) -> None:
    stream = oai.chat.completions.create(
        model=route.group, messages=[USER], stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == route.reply_to(PROMPT)
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert [f for f in finishes if f] == ["stop"] and finishes[-1] == "stop"
    last = chunks[-1]
    assert last.choices == [] and last.usage is not None
    assert all(c.usage is None for c in chunks[:-1])
    assert_billed(gateway_server, route, [openai_tokens(last.usage)], stream=True)


def test_openai_tool_round_trip(
    gateway_server: GatewayProcess, route: Route, oai: openai.OpenAI
) -> None:
    messages: list[Any] = [USER]
    first = oai.chat.completions.create(
        model=route.group, messages=messages, tools=[OPENAI_TOOL], tool_choice="required"
    )
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    (call,) = choice.message.tool_calls
    assert call.type == "function" and call.function.name == "get_weather" and call.id
    assert "Paris" in json.loads(call.function.arguments).values()
    messages += [
        choice.message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": TOOL_RESULT},
    ]
    second = oai.chat.completions.create(model=route.group, messages=messages, tools=[OPENAI_TOOL])
    assert second.choices[0].finish_reason == "stop"
    assert not second.choices[0].message.tool_calls
    assert TOOL_RESULT in second.choices[0].message.content
    tokens = [openai_tokens(first.usage), openai_tokens(second.usage)]
    assert_billed(gateway_server, route, tokens)


def test_openai_errors(gateway_server: GatewayProcess, route: Route, oai: openai.OpenAI) -> None:
    with pytest.raises(openai.RateLimitError) as limited:
        oai.chat.completions.create(model=route.limited_group, messages=[USER])
    assert limited.value.status_code == 429
    with pytest.raises(openai.AuthenticationError) as refused:
        oai.chat.completions.create(model=route.badauth_group, messages=[USER])
    assert refused.value.status_code == 401
    for error in (limited.value, refused.value):
        assert isinstance(error.body, dict) and error.body.get("message")
    assert_refused(gateway_server, route, [429, 401])


# --- the Anthropic SDK on /v1/messages ----------------------------------------------------------


def test_anthropic_text(
    gateway_server: GatewayProcess, route: Route, claude: anthropic.Anthropic
) -> None:
    message = claude.messages.create(model=route.group, max_tokens=256, messages=[USER])
    assert [(b.type, b.text) for b in message.content] == [("text", route.reply_to(PROMPT))]
    assert message.stop_reason == "end_turn"
    assert_billed(gateway_server, route, [anthropic_tokens(message.usage)])


def test_anthropic_stream(
    gateway_server: GatewayProcess, route: Route, claude: anthropic.Anthropic
) -> None:
    with claude.messages.stream(model=route.group, max_tokens=256, messages=[USER]) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == route.reply_to(PROMPT)
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens > 0
    assert_billed(gateway_server, route, [anthropic_tokens(final.usage)], stream=True)


def test_anthropic_tool_round_trip(
    gateway_server: GatewayProcess, route: Route, claude: anthropic.Anthropic
) -> None:
    messages: list[Any] = [USER]
    first = claude.messages.create(
        model=route.group,
        max_tokens=256,
        messages=messages,
        tools=[ANTHROPIC_TOOL],
        tool_choice={"type": "any"},
    )
    assert first.stop_reason == "tool_use"
    (use,) = [b for b in first.content if b.type == "tool_use"]
    assert use.name == "get_weather" and use.id
    assert "Paris" in use.input.values()
    messages += [
        {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": use.id, "content": TOOL_RESULT}],
        },
    ]
    second = claude.messages.create(
        model=route.group, max_tokens=256, messages=messages, tools=[ANTHROPIC_TOOL]
    )
    assert second.stop_reason == "end_turn"
    assert [b.type for b in second.content] == ["text"]
    assert TOOL_RESULT in second.content[0].text
    tokens = [anthropic_tokens(first.usage), anthropic_tokens(second.usage)]
    assert_billed(gateway_server, route, tokens)


def test_anthropic_errors(
    gateway_server: GatewayProcess, route: Route, claude: anthropic.Anthropic
) -> None:
    with pytest.raises(anthropic.RateLimitError) as limited:
        claude.messages.create(model=route.limited_group, max_tokens=16, messages=[USER])
    with pytest.raises(anthropic.AuthenticationError) as refused:
        claude.messages.create(model=route.badauth_group, max_tokens=16, messages=[USER])
    assert (limited.value.status_code, refused.value.status_code) == (429, 401)
    assert limited.value.body["error"]["type"] == "rate_limit_error"
    assert refused.value.body["error"]["type"] == "authentication_error"
    assert_refused(gateway_server, route, [429, 401])
