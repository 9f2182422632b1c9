"""End to end: the official OpenAI SDK -> the gateway -> a fake Azure OpenAI resource."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import openai
import orjson
import pytest

from apps.usage.models import UsageLog
from tests.fakes import azure as fake_azure
from tests.fakes.server import BackgroundServer

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"location": {"type": "string"}},
            "required": ["location"],
        },
    },
}


@pytest.fixture(scope="module")
def azure_server() -> Iterator[tuple[BackgroundServer, fake_azure.FakeAzure]]:
    app, fake = fake_azure.make_app()
    server = BackgroundServer(app)
    server.start()
    yield server, fake
    server.stop()


@pytest.fixture
def fake(azure_server: tuple[BackgroundServer, fake_azure.FakeAzure]) -> fake_azure.FakeAzure:
    azure_server[1].reset()
    return azure_server[1]


@pytest.fixture
def azure_group(
    azure_server: tuple[BackgroundServer, fake_azure.FakeAzure],
    make_deployment: Callable[..., Any],
) -> Callable[..., Any]:
    """Route ``group`` to deployment ``model`` of the fake Azure resource."""
    server, _ = azure_server

    def build(
        group: str = "az", model: str = "gpt-4o-mini", provider: str = "azure", **fields: Any
    ) -> Any:
        fields.setdefault("api_base", server.url)
        fields.setdefault("api_key", fake_azure.API_KEY)
        return make_deployment(group, provider, model, **fields)

    return build


def chat(client: openai.OpenAI, model: str, text: str, **kwargs: Any) -> Any:
    return client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": text}], **kwargs
    )


def test_text(gateway_server: Any, azure_group: Any, openai_client: Any, fake: Any) -> None:
    azure_group()
    reply = chat(openai_client(), "az", "hello azure", temperature=0.2)
    assert reply.choices[0].message.content == "hello azure"
    assert reply.prompt_filter_results[0]["prompt_index"] == 0  # Azure's extra field, relayed
    assert reply.choices[0].content_filter_results["violence"]["filtered"] is False
    recorded = fake.requests[-1]
    assert recorded.path == "/openai/deployments/gpt-4o-mini/chat/completions"
    assert recorded.query == {"api-version": "2024-10-21"}
    assert recorded.headers["api-key"] == fake_azure.API_KEY
    assert "Authorization" not in recorded.headers
    assert recorded.body["model"] == "gpt-4o-mini" and recorded.body["temperature"] == 0.2
    gateway_server.flush_usage()
    row = UsageLog.objects.get()
    assert (row.status_code, row.provider, row.upstream_model) == (200, "azure", "gpt-4o-mini")
    assert (row.prompt_tokens, row.completion_tokens) == (
        reply.usage.prompt_tokens,
        reply.usage.completion_tokens,
    )
    assert row.cost > 0


def test_stream(gateway_server: Any, azure_group: Any, openai_client: Any, fake: Any) -> None:
    azure_group()
    stream = chat(
        openai_client(),
        "az",
        "the quick brown fox — façade 🌍",
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    # Azure's opening chunk (empty choices, prompt filter results) reaches the client.
    assert chunks[0].choices == [] and chunks[0].prompt_filter_results[0]["prompt_index"] == 0
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "the quick brown fox — façade 🌍"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens > 0
    assert fake.requests[-1].body["stream_options"] == {"include_usage": True}
    gateway_server.flush_usage()
    row = UsageLog.objects.get()
    assert row.stream and row.completion_tokens == chunks[-1].usage.completion_tokens
    assert row.cost > 0


def test_stream_usage_billed_without_usage_chunk(
    gateway_server: Any, azure_group: Any, openai_client: Any, fake: Any
) -> None:
    azure_group()
    chunks = list(chat(openai_client(), "az", "count me", stream=True))
    assert all(c.usage is None for c in chunks)
    assert fake.requests[-1].body["stream_options"] == {"include_usage": True}
    gateway_server.flush_usage()
    assert UsageLog.objects.get().completion_tokens == 2


def test_old_api_version_gets_no_stream_options(
    gateway_server: Any, azure_group: Any, openai_client: Any, fake: Any
) -> None:
    azure_group(api_version="2024-06-01")
    stream = chat(
        openai_client(), "az", "old one", stream=True, stream_options={"include_usage": True}
    )
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == "old one"
    recorded = fake.requests[-1]
    assert recorded.query == {"api-version": "2024-06-01"}
    assert "stream_options" not in recorded.body


def test_v1_api(gateway_server: Any, azure_group: Any, openai_client: Any, fake: Any) -> None:
    azure_group(api_version="v1")
    assert chat(openai_client(), "az", "via v1").choices[0].message.content == "via v1"
    recorded = fake.requests[-1]
    assert (recorded.path, recorded.query) == ("/openai/v1/chat/completions", {})
    assert recorded.body["model"] == "gpt-4o-mini"


def test_tool_call_round_trip(
    gateway_server: Any, azure_group: Any, openai_client: Any, fake: Any
) -> None:
    azure_group(model="tool-caller")
    client = openai_client()
    messages: list[Any] = [{"role": "user", "content": "Weather in Paris?"}]
    first = client.chat.completions.create(model="az", messages=messages, tools=[WEATHER_TOOL])
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    (call,) = choice.message.tool_calls
    assert call.function.name == "get_weather"
    assert orjson.loads(call.function.arguments) == {"location": "Paris"}
    assert fake.requests[-1].body["tools"] == [WEATHER_TOOL]
    messages += [
        choice.message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "21 C"},
    ]
    second = client.chat.completions.create(model="az", messages=messages, tools=[WEATHER_TOOL])
    assert second.choices[0].message.content == "The tool said: 21 C"


def test_streamed_tool_call(
    gateway_server: Any, azure_group: Any, openai_client: Any, fake: Any
) -> None:
    azure_group(model="tool-caller")
    stream = openai_client().chat.completions.create(
        model="az",
        messages=[{"role": "user", "content": "Weather?"}],
        tools=[WEATHER_TOOL],
        stream=True,
    )
    chunks = list(stream)
    calls = [tc for c in chunks if c.choices for tc in c.choices[0].delta.tool_calls or ()]
    assert calls[0].function.name == "get_weather"
    arguments = "".join(tc.function.arguments or "" for tc in calls)
    assert orjson.loads(arguments) == {"location": "Paris"}
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"


def test_filtered_output_passes(
    gateway_server: Any, azure_group: Any, openai_client: Any, fake: Any
) -> None:
    azure_group(model="filtered-output")
    reply = chat(openai_client(), "az", "write something violent")
    assert reply.choices[0].finish_reason == "content_filter"
    assert reply.choices[0].message.content is None
    assert reply.choices[0].content_filter_results["violence"]["filtered"] is True


def test_embeddings(gateway_server: Any, azure_group: Any, openai_client: Any, fake: Any) -> None:
    azure_group("az-embed", model="text-embedding-3-small")
    result = openai_client().embeddings.create(model="az-embed", input=["one two", "three"])
    assert [d.index for d in result.data] == [0, 1]
    assert result.data[1].embedding == pytest.approx([0.2, -0.2, 0.3])
    assert fake.requests[-1].path == "/openai/deployments/text-embedding-3-small/embeddings"
    gateway_server.flush_usage()
    row = UsageLog.objects.get()
    assert (row.call_type, row.prompt_tokens) == ("embeddings", 3)
    assert row.cost > 0


def test_completions(gateway_server: Any, azure_group: Any, openai_client: Any, fake: Any) -> None:
    azure_group("az-text", model="gpt-35-turbo-instruct")
    result = openai_client().completions.create(model="az-text", prompt="say this please")
    assert result.choices[0].text == "say this please"
    assert fake.requests[-1].path == "/openai/deployments/gpt-35-turbo-instruct/completions"


def test_azure_text_serves_chat(
    gateway_server: Any, azure_group: Any, openai_client: Any, fake: Any
) -> None:
    azure_group("instruct", model="gpt-35-turbo-instruct", provider="azure_text")
    reply = chat(openai_client(), "instruct", "finish this sentence", max_tokens=20)
    assert reply.object == "chat.completion"
    assert reply.choices[0].message.content == "finish this sentence"
    recorded = fake.requests[-1]
    assert recorded.path == "/openai/deployments/gpt-35-turbo-instruct/completions"
    assert recorded.body["prompt"] == "finish this sentence" and "messages" not in recorded.body
    stream = chat(
        openai_client(),
        "instruct",
        "and stream it",
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == (
        "and stream it"
    )
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 3


def test_entra_client_credentials(
    gateway_server: Any,
    azure_server: Any,
    azure_group: Any,
    openai_client: Any,
    fake: Any,
) -> None:
    from apps.core.secrets import encrypt

    server, _ = azure_server
    azure_group(
        api_key="",
        extra_params={
            "tenant_id": fake_azure.TENANT,
            "client_id": fake_azure.CLIENT_ID,
            "azure_authority_host": server.url,
        },
        secret_params={"client_secret": encrypt(fake_azure.CLIENT_SECRET)},
    )
    client = openai_client()
    assert chat(client, "az", "with entra").choices[0].message.content == "with entra"
    assert chat(client, "az", "again").choices[0].message.content == "again"
    assert len(fake.token_requests) == 1  # cached between requests
    assert fake.token_requests[0]["scope"] == "https://cognitiveservices.azure.com/.default"
    recorded = fake.requests[-1]
    assert recorded.headers["Authorization"].startswith("Bearer entra-")
    assert "api-key" not in recorded.headers


def test_entra_bad_secret(
    gateway_server: Any, azure_server: Any, azure_group: Any, openai_client: Any, fake: Any
) -> None:
    from apps.core.secrets import encrypt

    server, _ = azure_server
    azure_group(
        api_key="",
        extra_params={
            "tenant_id": fake_azure.TENANT,
            "client_id": fake_azure.CLIENT_ID,
            "azure_authority_host": server.url,
        },
        secret_params={"client_secret": encrypt("wrong-secret")},
    )
    with pytest.raises(openai.AuthenticationError) as info:
        chat(openai_client(), "az", "nope")
    assert "wrong-secret" not in str(info.value)
    assert fake.requests == []


@pytest.mark.parametrize(
    ("model", "exc", "status"),
    [
        ("error-401", openai.AuthenticationError, 401),
        ("error-403", openai.PermissionDeniedError, 403),
        ("error-404", openai.NotFoundError, 404),
        ("error-429", openai.RateLimitError, 429),
        ("error-500", openai.InternalServerError, 502),
        ("error-503", openai.InternalServerError, 503),
    ],
)
def test_errors(
    gateway_server: Any,
    azure_group: Any,
    openai_client: Any,
    fake: Any,
    model: str,
    exc: type[Exception],
    status: int,
) -> None:
    azure_group(model=model)
    with pytest.raises(exc) as info:
        chat(openai_client(), "az", "hi")
    err: Any = info.value
    assert err.status_code == status
    assert err.body["message"].startswith("azure error: ")
    assert fake_azure.API_KEY not in str(err.body)
    if status == 429:
        assert err.response.headers["retry-after"] == "6"
    gateway_server.flush_usage()
    assert UsageLog.objects.get().status_code == status


def test_bad_upstream_key(
    gateway_server: Any, azure_group: Any, openai_client: Any, fake: Any
) -> None:
    azure_group(api_key="wrong-key-value")
    with pytest.raises(openai.AuthenticationError):
        chat(openai_client(), "az", "hi")
    assert fake.requests[-1].headers["api-key"] == "wrong-key-value"


def test_content_filter(
    gateway_server: Any, azure_group: Any, openai_client: Any, fake: Any
) -> None:
    azure_group(model="content-filter")
    with pytest.raises(openai.BadRequestError) as info:
        chat(openai_client(), "az", "something forbidden")
    err: Any = info.value
    assert err.code == "content_policy_violation"
    assert err.body["type"] == "invalid_request_error"
    assert err.body["message"].endswith("(content filter: violence (high))")
    for stream in (True, False):
        with pytest.raises(openai.BadRequestError):
            chat(openai_client(), "az", "again", stream=stream)


def test_midstream_error(
    gateway_server: Any, azure_group: Any, openai_client: Any, fake: Any
) -> None:
    azure_group(model="stream-error")
    stream = chat(openai_client(), "az", "one two three four", stream=True)
    with pytest.raises(openai.APIError) as info:
        list(stream)
    assert "azure error" in str(info.value)
    gateway_server.flush_usage()
    assert UsageLog.objects.get().status_code == 502
