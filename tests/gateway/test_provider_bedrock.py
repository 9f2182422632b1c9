"""End to end: the official OpenAI SDK -> the gateway -> the fake Bedrock runtime on loopback.

The fake checks every SigV4 signature (or Bedrock API key) against what it received, so a
request that reaches a handler was signed over the exact URL, headers and body bytes sent.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import openai
import pytest

from tests.fakes import bedrock as fake
from tests.fakes.server import BackgroundServer

MODEL = "anthropic.claude-3-5-sonnet-20240620-v1:0"
SESSION_TOKEN = fake.SESSION_TOKEN
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather for a city",
            "parameters": {
                "type": "object",
                "properties": {"location": {"type": "string"}, "unit": {"type": "string"}},
                "required": ["location"],
            },
        },
    }
]


@pytest.fixture(scope="session")
def _fake_bedrock_server() -> Iterator[BackgroundServer]:
    server = BackgroundServer(fake.create_app(session_token=SESSION_TOKEN))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def fake_bedrock(_fake_bedrock_server: BackgroundServer) -> Iterator[BackgroundServer]:
    app = _fake_bedrock_server.app
    app[fake.REQUESTS].clear()
    app[fake.CONFIG].split_every = 0
    yield _fake_bedrock_server
    app[fake.CONFIG].split_every = 0


@pytest.fixture
def bedrock_upstream(
    fake_bedrock: BackgroundServer, make_deployment: Callable[..., Any]
) -> Callable[..., Any]:
    """Route model group ``group`` to the fake Bedrock runtime, signing with SigV4 keys."""

    def build(group: str = "claude", model: str = MODEL, **fields: Any) -> Any:
        from apps.core.secrets import encrypt

        fields.setdefault("api_base", fake_bedrock.url)
        fields.setdefault("extra_params", {"aws_region_name": fake.REGION})
        if "api_key" not in fields:
            fields.setdefault(
                "secret_params",
                {
                    "aws_access_key_id": fake.ACCESS_KEY,
                    "aws_secret_access_key": encrypt(fake.SECRET_KEY),
                    "aws_session_token": encrypt(SESSION_TOKEN),
                },
            )
        return make_deployment(group, "bedrock", model, **fields)

    return build


def requests(server: BackgroundServer) -> list[fake.RecordedRequest]:
    return list(server.app[fake.REQUESTS])


def test_chat_text_and_usage(gateway_server, bedrock_upstream, openai_client, fake_bedrock):
    bedrock_upstream()
    reply = openai_client().chat.completions.create(
        model="claude",
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "hello wörld"},
        ],
        max_tokens=64,
        temperature=0.3,
        metadata={"trace": "abc"},
    )
    assert reply.choices[0].message.content == "Héllo from Bedrock ✓ — you said: hello wörld"
    assert reply.choices[0].finish_reason == "stop"
    (sent,) = requests(fake_bedrock)
    assert sent.path == f"/model/{MODEL}/converse"
    assert sent.headers["Authorization"].startswith(
        f"AWS4-HMAC-SHA256 Credential={fake.ACCESS_KEY}/"
    )
    assert sent.headers["x-amz-security-token"] == SESSION_TOKEN
    body = sent.json
    assert body["system"] == [{"text": "Be brief."}]
    assert body["inferenceConfig"] == {"maxTokens": 64, "temperature": 0.3}
    assert "metadata" not in body and "model" not in body
    expected = fake.converse_body(body, fake.FakeConfig())["usage"]
    assert reply.usage is not None
    assert reply.usage.prompt_tokens == expected["inputTokens"]
    assert reply.usage.completion_tokens == expected["outputTokens"]


def test_bedrock_api_key(gateway_server, bedrock_upstream, openai_client, fake_bedrock):
    bedrock_upstream(api_key=fake.API_KEY)
    reply = openai_client().chat.completions.create(
        model="claude", messages=[{"role": "user", "content": "hi"}]
    )
    assert reply.choices[0].message.content.endswith("you said: hi")
    assert requests(fake_bedrock)[-1].headers["Authorization"] == f"Bearer {fake.API_KEY}"


def test_arn_model_id_is_signed_as_sent(
    gateway_server, bedrock_upstream, openai_client, fake_bedrock
):
    arn = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-v1:0"
    bedrock_upstream(model="converse/" + arn)
    reply = openai_client().chat.completions.create(
        model="claude", messages=[{"role": "user", "content": "hi"}]
    )
    assert reply.choices[0].message.content.endswith("you said: hi")
    assert requests(fake_bedrock)[-1].raw_path == (
        "/model/arn:aws:bedrock:us-east-1:123456789012:inference-profile%2F"
        "us.anthropic.claude-v1:0/converse"
    )


@pytest.mark.parametrize("split", [0, 1, 7])
def test_stream_reassembles_the_same_text(
    split, gateway_server, bedrock_upstream, openai_client, fake_bedrock
):
    bedrock_upstream()
    fake_bedrock.app[fake.CONFIG].split_every = split
    messages = [{"role": "user", "content": "stream wörld ✓"}]
    client = openai_client()
    whole = client.chat.completions.create(model="claude", messages=messages)
    stream = client.chat.completions.create(
        model="claude", messages=messages, stream=True, stream_options={"include_usage": True}
    )
    text, finish, usage = "", None, None
    for chunk in stream:
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
            finish = chunk.choices[0].finish_reason or finish
        if chunk.usage is not None:
            usage = chunk.usage
    assert text == whole.choices[0].message.content
    assert finish == "stop"
    assert usage is not None and whole.usage is not None
    assert usage.prompt_tokens == whole.usage.prompt_tokens
    assert usage.completion_tokens == whole.usage.completion_tokens
    assert requests(fake_bedrock)[-1].path == f"/model/{MODEL}/converse-stream"


def test_tool_call_round_trip(gateway_server, bedrock_upstream, openai_client, fake_bedrock):
    bedrock_upstream()
    client = openai_client()
    messages: list[dict[str, Any]] = [{"role": "user", "content": "Weather in Paris?"}]
    first = client.chat.completions.create(
        model="claude", messages=messages, tools=TOOLS, tool_choice="required"
    )
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    (call,) = choice.message.tool_calls or []
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"location": "Paris", "unit": "celsius"}
    assert requests(fake_bedrock)[-1].json["toolConfig"]["toolChoice"] == {"any": {}}

    messages.append(choice.message.model_dump(exclude_none=True))
    messages.append({"role": "tool", "tool_call_id": call.id, "content": "18°C and sunny"})
    second = client.chat.completions.create(model="claude", messages=messages, tools=TOOLS)
    assert second.choices[0].message.content == "The tool says: 18°C and sunny"
    sent = requests(fake_bedrock)[-1].json
    assert sent["messages"][1]["content"][-1]["toolUse"]["toolUseId"] == call.id
    assert sent["messages"][2]["content"][0]["toolResult"]["toolUseId"] == call.id


def test_streamed_tool_call(gateway_server, bedrock_upstream, openai_client, fake_bedrock):
    bedrock_upstream()
    fake_bedrock.app[fake.CONFIG].split_every = 3
    stream = openai_client().chat.completions.create(
        model="claude",
        messages=[{"role": "user", "content": "Weather in Paris?"}],
        tools=TOOLS,
        stream=True,
    )
    calls: dict[int, dict[str, str]] = {}
    finish = None
    for chunk in stream:
        if not chunk.choices:
            continue
        finish = chunk.choices[0].finish_reason or finish
        for delta in chunk.choices[0].delta.tool_calls or ():
            slot = calls.setdefault(delta.index, {"id": "", "name": "", "arguments": ""})
            slot["id"] += delta.id or ""
            if delta.function is not None:
                slot["name"] += delta.function.name or ""
                slot["arguments"] += delta.function.arguments or ""
    assert finish == "tool_calls"
    assert list(calls) == [0]
    assert calls[0]["name"] == "get_weather"
    assert calls[0]["id"] == "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q"
    assert json.loads(calls[0]["arguments"]) == {"location": "Paris", "unit": "celsius"}


@pytest.mark.parametrize(
    ("error", "exc_type", "status", "code"),
    [
        ("ValidationException", openai.BadRequestError, 400, "ValidationException"),
        ("ContextTooLong", openai.BadRequestError, 400, "context_length_exceeded"),
        ("AccessDeniedException", openai.PermissionDeniedError, 403, None),
        ("ResourceNotFoundException", openai.NotFoundError, 404, None),
        ("ModelTimeoutException", openai.APIStatusError, 408, None),
        ("ThrottlingException", openai.RateLimitError, 429, None),
        ("ModelNotReadyException", openai.InternalServerError, 503, None),
        ("ModelErrorException", openai.InternalServerError, 502, None),
        ("InternalServerException", openai.InternalServerError, 502, None),
        ("ServiceUnavailableException", openai.InternalServerError, 503, None),
    ],
)
def test_errors_reach_the_sdk_as_the_right_class(
    error, exc_type, status, code, gateway_server, bedrock_upstream, openai_client
):
    bedrock_upstream(model=f"error-{error}")
    with pytest.raises(exc_type) as info:
        openai_client().chat.completions.create(
            model="claude", messages=[{"role": "user", "content": "hi"}]
        )
    assert info.value.status_code == status
    assert "bedrock" in info.value.message
    if code is not None:
        assert info.value.code == code


@pytest.mark.parametrize("credential", ["secret", "api_key"])
def test_rejected_credentials_are_401(
    credential, gateway_server, bedrock_upstream, openai_client, fake_bedrock
):
    if credential == "api_key":
        bedrock_upstream(api_key="ABSKwrong")
    else:
        bedrock_upstream(
            secret_params={
                "aws_access_key_id": fake.ACCESS_KEY,
                "aws_secret_access_key": "not-the-secret",
                "aws_session_token": SESSION_TOKEN,
            }
        )
    with pytest.raises(openai.AuthenticationError) as info:
        openai_client().chat.completions.create(
            model="claude", messages=[{"role": "user", "content": "hi"}]
        )
    assert SESSION_TOKEN not in str(info.value)
    assert "not-the-secret" not in str(info.value)


def test_mid_stream_exception(gateway_server, bedrock_upstream, openai_client, fake_bedrock):
    bedrock_upstream(model="stream-error-modelStreamErrorException")
    stream = openai_client().chat.completions.create(
        model="claude", messages=[{"role": "user", "content": "hi there"}], stream=True
    )
    text = ""
    with pytest.raises(openai.APIError) as info:
        for chunk in stream:
            if chunk.choices:
                text += chunk.choices[0].delta.content or ""
    assert text.startswith("Héllo")
    assert "Stream failed." in str(info.value)
