"""End to end: the official ``openai.AzureOpenAI`` client against the gateway's Azure paths
(``/openai/deployments/{group}/...`` and ``/openai/v1/...``), served by a fake Azure upstream."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx2 as httpx
import openai
import pytest

from apps.usage.models import UsageLog
from tests.conftest import MASTER_KEY
from tests.fakes import azure as fake_azure
from tests.fakes.server import BackgroundServer

API_VERSION = "2024-10-21"


@pytest.fixture(scope="module")
def azure_server() -> Iterator[tuple[BackgroundServer, fake_azure.FakeAzure]]:
    app, fake = fake_azure.make_app()
    server = BackgroundServer(app)
    server.start()
    yield server, fake
    server.stop()


@pytest.fixture
def azure_group(
    azure_server: tuple[BackgroundServer, fake_azure.FakeAzure],
    make_deployment: Callable[..., Any],
) -> Callable[..., Any]:
    """Route model group ``group`` to deployment ``model`` of the fake Azure resource."""
    server, fake = azure_server
    fake.reset()

    def build(group: str = "gpt-prod", model: str = "gpt-4o-mini", **fields: Any) -> Any:
        fields.setdefault("api_base", server.url)
        fields.setdefault("api_key", fake_azure.API_KEY)
        return make_deployment(group, "azure", model, **fields)

    return build


@pytest.fixture
def azure_client(gateway_server: Any) -> Callable[..., openai.AzureOpenAI]:
    """``openai.AzureOpenAI`` pointed at the gateway: azure_client(key, **options)."""

    def build(key: str | None = MASTER_KEY, **kwargs: Any) -> openai.AzureOpenAI:
        if key is not None and "azure_ad_token" not in kwargs:
            kwargs["api_key"] = key
        return openai.AzureOpenAI(
            azure_endpoint=gateway_server.url, api_version=API_VERSION, max_retries=0, **kwargs
        )

    return build


def chat(client: Any, model: str, text: str, **kwargs: Any) -> Any:
    return client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": text}], **kwargs
    )


def test_chat(gateway_server: Any, azure_group: Any, azure_client: Any, make_key: Any) -> None:
    azure_group()
    reply = chat(azure_client(make_key()), "gpt-prod", "hello from the azure sdk")
    assert reply.choices[0].message.content == "hello from the azure sdk"
    assert reply.prompt_filter_results[0]["prompt_index"] == 0
    gateway_server.flush_usage()
    row = UsageLog.objects.get()
    assert (row.status_code, row.model_group, row.call_type) == (200, "gpt-prod", "chat")
    assert (row.prompt_tokens, row.completion_tokens) == (
        reply.usage.prompt_tokens,
        reply.usage.completion_tokens,
    )
    assert row.cost > 0


def test_path_names_the_group(gateway_server: Any, azure_group: Any, azure_client: Any) -> None:
    azure_group()
    client = azure_client(azure_deployment="gpt-prod")
    reply = chat(client, "some-other-model", "the path wins")
    assert reply.choices[0].message.content == "the path wins"
    gateway_server.flush_usage()
    assert UsageLog.objects.get().model_group == "gpt-prod"


def test_raw_request_without_model_or_api_version(gateway_server: Any, azure_group: Any) -> None:
    azure_group()
    reply = httpx.post(
        gateway_server.url + "/openai/deployments/gpt-prod/chat/completions",
        headers={"api-key": MASTER_KEY},
        json={"messages": [{"role": "user", "content": "no model here"}]},
    )
    assert reply.status_code == 200
    assert reply.json()["choices"][0]["message"]["content"] == "no model here"


def test_group_name_with_slash(gateway_server: Any, azure_group: Any, azure_client: Any) -> None:
    azure_group("team/gpt")
    assert chat(azure_client(), "team/gpt", "slashes").choices[0].message.content == "slashes"
    result = azure_client().completions.create(model="team/gpt", prompt="a completion")
    assert result.choices[0].text == "a completion"


def test_stream(gateway_server: Any, azure_group: Any, azure_client: Any) -> None:
    azure_group()
    stream = chat(
        azure_client(),
        "gpt-prod",
        "stream me — ça va 🌍",
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert chunks[0].choices == [] and chunks[0].prompt_filter_results
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "stream me — ça va 🌍"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 6
    gateway_server.flush_usage()
    row = UsageLog.objects.get()
    assert row.stream and row.completion_tokens == 6 and row.cost > 0


def test_embeddings(gateway_server: Any, azure_group: Any, azure_client: Any) -> None:
    azure_group("embed", model="text-embedding-3-small")
    result = azure_client().embeddings.create(model="embed", input="embed these words")
    assert len(result.data) == 1 and result.usage.prompt_tokens == 3
    gateway_server.flush_usage()
    row = UsageLog.objects.get()
    assert (row.call_type, row.model_group, row.prompt_tokens) == ("embeddings", "embed", 3)


def test_completions(gateway_server: Any, azure_group: Any, azure_client: Any) -> None:
    azure_group("instruct", model="gpt-35-turbo-instruct")
    result = azure_client().completions.create(model="instruct", prompt="complete me")
    assert result.choices[0].text == "complete me"
    gateway_server.flush_usage()
    assert UsageLog.objects.get().call_type == "completions"


def test_bearer_token_accepted(gateway_server: Any, azure_group: Any, azure_client: Any) -> None:
    azure_group()
    client = azure_client(azure_ad_token=MASTER_KEY)
    assert chat(client, "gpt-prod", "bearer").choices[0].message.content == "bearer"


def test_v1_paths(gateway_server: Any, azure_group: Any) -> None:
    azure_group()
    azure_group("embed", model="text-embedding-3-small")
    client = openai.OpenAI(
        base_url=gateway_server.url + "/openai/v1", api_key=MASTER_KEY, max_retries=0
    )
    assert chat(client, "gpt-prod", "v1 path").choices[0].message.content == "v1 path"
    assert client.embeddings.create(model="embed", input="x").data[0].index == 0


def test_bad_key(gateway_server: Any, azure_group: Any, azure_client: Any) -> None:
    azure_group()
    with pytest.raises(openai.AuthenticationError) as info:
        chat(azure_client("sk-not-a-real-key"), "gpt-prod", "hi")
    assert info.value.status_code == 401
    response = httpx.post(
        gateway_server.url + "/openai/deployments/gpt-prod/chat/completions?api-version=x",
        json={"messages": [{"role": "user", "content": "no key"}]},
    )
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_model_not_allowed(
    gateway_server: Any, azure_group: Any, azure_client: Any, make_key: Any
) -> None:
    azure_group()
    with pytest.raises(openai.PermissionDeniedError):
        chat(azure_client(make_key(models=["other"])), "gpt-prod", "hi")


def test_unknown_group(gateway_server: Any, azure_group: Any, azure_client: Any) -> None:
    azure_group()
    with pytest.raises(openai.NotFoundError):
        chat(azure_client(), "no-such-group", "hi")


def test_invalid_body(gateway_server: Any, azure_group: Any, azure_client: Any) -> None:
    azure_group()
    with pytest.raises(openai.BadRequestError) as info:
        azure_client().chat.completions.create(model="gpt-prod", messages=[])
    assert info.value.body["param"] == "messages"


def test_content_filter(gateway_server: Any, azure_group: Any, azure_client: Any) -> None:
    azure_group(model="content-filter")
    with pytest.raises(openai.BadRequestError) as info:
        chat(azure_client(), "gpt-prod", "something forbidden")
    err: Any = info.value
    assert err.code == "content_policy_violation"
    assert "content filter: violence (high)" in err.body["message"]
    gateway_server.flush_usage()
    row = UsageLog.objects.get()
    assert (row.status_code, row.error_type) == (400, "content_policy_violation")


def test_upstream_rate_limit(gateway_server: Any, azure_group: Any, azure_client: Any) -> None:
    azure_group(model="error-429")
    with pytest.raises(openai.RateLimitError) as info:
        chat(azure_client(), "gpt-prod", "hi")
    assert info.value.response.headers["retry-after"] == "6"
