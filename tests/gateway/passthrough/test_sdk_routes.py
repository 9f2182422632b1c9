"""End to end: the Anthropic SDK on ``/anthropic``, the OpenAI SDK on ``/openai`` and
``AzureOpenAI`` on ``/azure``, with only the base URL and the key changed."""

from __future__ import annotations

from typing import Any

import anthropic
import openai
import pytest

from tests.fakes import anthropic as fake_anthropic
from tests.fakes import azure as fake_azure
from tests.gateway.helpers import E2E, usage_rows

pytestmark = E2E


def anthropic_client(gateway: Any, key: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gateway.url + "/anthropic", api_key=key, max_retries=0)


def test_anthropic_messages(
    gateway_server: Any, claude_group: Any, anthropic_fake: Any, make_key: Any
) -> None:
    claude_group()
    key = make_key(models=["claude"])
    message = anthropic_client(gateway_server, key).messages.create(
        model="claude",
        max_tokens=64,
        messages=[{"role": "user", "content": "hello claude"}],
        extra_headers={"anthropic-beta": "prompt-caching-2024-07-31", "x-private": "no"},
        extra_body={"metadata": {"user_id": "u-1", "tag": "anthropic-sdk"}},
    )
    assert message.content[0].text
    recorded = anthropic_fake.requests[-1]
    assert recorded.headers["x-api-key"] == fake_anthropic.API_KEY
    assert recorded.headers["anthropic-beta"] == "prompt-caching-2024-07-31"
    assert "x-private" not in recorded.headers
    assert recorded.body["metadata"] == {"user_id": "u-1"}
    (row,) = usage_rows(gateway_server, 1)
    assert row.model_group == "claude" and row.provider == "anthropic"
    assert row.prompt_tokens == message.usage.input_tokens
    assert row.completion_tokens == message.usage.output_tokens
    assert row.metadata["tag"] == "anthropic-sdk"


def test_anthropic_stream(
    gateway_server: Any, claude_group: Any, anthropic_fake: Any, make_key: Any
) -> None:
    claude_group()
    client = anthropic_client(gateway_server, make_key())
    with client.messages.stream(
        model="claude", max_tokens=64, messages=[{"role": "user", "content": "stream this"}]
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text
    (row,) = usage_rows(gateway_server, 1)
    assert row.stream and row.completion_tokens == final.usage.output_tokens


def test_anthropic_key_without_access(
    gateway_server: Any, claude_group: Any, anthropic_fake: Any, make_key: Any
) -> None:
    claude_group()
    claude_group("other")
    client = anthropic_client(gateway_server, make_key(models=["other"]))
    with pytest.raises(anthropic.PermissionDeniedError):
        client.messages.create(
            model="claude", max_tokens=8, messages=[{"role": "user", "content": "hi"}]
        )
    assert anthropic_fake.requests == []


def test_openai_base_url(gateway_server: Any, openai_upstream: Any, make_key: Any) -> None:
    openai_upstream()
    for base in ("/openai", "/openai/v1"):
        client = openai.OpenAI(
            base_url=gateway_server.url + base, api_key=make_key(models=["gpt"]), max_retries=0
        )
        reply = client.chat.completions.create(
            model="gpt",
            messages=[{"role": "user", "content": "hi"}],
            extra_body={"metadata": {"tag": base}},
        )
        assert reply.choices[0].message.content
    rows = usage_rows(gateway_server, 2)
    assert sorted(r.metadata["tag"] for r in rows) == ["/openai", "/openai/v1"]


def test_azure_endpoint(gateway_server: Any, azure_group: Any, make_key: Any) -> None:
    azure_group()
    client = openai.AzureOpenAI(
        azure_endpoint=gateway_server.url + "/azure",
        api_key=make_key(models=["gpt-prod"]),
        api_version="2024-10-21",
        max_retries=0,
    )
    reply = client.chat.completions.create(
        model="gpt-prod", messages=[{"role": "user", "content": "hello azure"}]
    )
    assert reply.choices[0].message.content
    chunks = list(
        client.chat.completions.create(
            model="gpt-prod", messages=[{"role": "user", "content": "hi"}], stream=True
        )
    )
    assert any(c.choices and c.choices[0].delta.content for c in chunks)
    rows = usage_rows(gateway_server, 2)
    assert {r.provider for r in rows} == {"azure"}
    assert all(r.prompt_tokens > 0 for r in rows)
    assert fake_azure.API_KEY not in str([r.error_message for r in rows])


def test_anthropic_count_tokens(
    gateway_server: Any, claude_group: Any, anthropic_fake: Any, make_key: Any
) -> None:
    claude_group()
    count = anthropic_client(gateway_server, make_key()).messages.count_tokens(
        model="claude", messages=[{"role": "user", "content": "count me"}]
    )
    assert count.input_tokens > 0
    assert anthropic_fake.requests[-1].path == "/v1/messages/count_tokens"
