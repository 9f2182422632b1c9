"""The Anthropic-compatible /v1/messages endpoint, driven by the official Anthropic SDK,
routed to non-Anthropic models (the translated path)."""

from __future__ import annotations

import anthropic
import pytest

from apps.usage.models import UsageLog
from tests.conftest import MASTER_KEY


@pytest.fixture
def anthropic_client(gateway_server):
    def build(key: str = MASTER_KEY) -> anthropic.Anthropic:
        return anthropic.Anthropic(base_url=gateway_server.url, api_key=key, max_retries=0)

    return build


def test_messages_to_an_openai_model(
    gateway_server, openai_upstream, anthropic_client, fake_openai
):
    openai_upstream("gpt", "gpt-4o-mini")
    message = anthropic_client().messages.create(
        model="gpt",
        max_tokens=100,
        system="Be brief.",
        messages=[{"role": "user", "content": "hello from anthropic"}],
    )
    assert message.type == "message"
    assert message.content[0].text == "hello from anthropic"
    assert message.stop_reason == "end_turn"
    assert message.usage.output_tokens == 3
    sent = fake_openai.requests[-1].body
    assert sent["messages"][0] == {"role": "system", "content": "Be brief."}
    assert sent["max_tokens"] == 100
    gateway_server.flush_usage()
    row = UsageLog.objects.get()
    assert row.call_type == "messages" and row.status_code == 200 and row.completion_tokens == 3


def test_messages_stream_to_an_openai_model(gateway_server, openai_upstream, anthropic_client):
    openai_upstream("gpt", "gpt-4o-mini")
    with anthropic_client().messages.stream(
        model="gpt",
        max_tokens=50,
        messages=[{"role": "user", "content": "stream this text"}],
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "stream this text"
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == 3
    gateway_server.flush_usage()
    row = UsageLog.objects.get()
    assert row.stream and row.completion_tokens == 3


def test_messages_errors_in_anthropic_shape(
    gateway_server, openai_upstream, anthropic_client, make_key
):
    openai_upstream("gpt", "gpt-4o-mini")
    openai_upstream("broken", "error-429")
    with pytest.raises(anthropic.AuthenticationError) as exc:
        anthropic_client("sk-nope").messages.create(
            model="gpt", max_tokens=5, messages=[{"role": "user", "content": "x"}]
        )
    assert exc.value.body["type"] == "error"
    assert exc.value.body["error"]["type"] == "authentication_error"
    with pytest.raises(anthropic.NotFoundError):
        anthropic_client().messages.create(
            model="nope", max_tokens=5, messages=[{"role": "user", "content": "x"}]
        )
    with pytest.raises(anthropic.BadRequestError) as bad:
        anthropic_client().messages.create(
            model="gpt", max_tokens=5, messages=[{"role": "robot", "content": "x"}]
        )
    assert bad.value.body["error"]["type"] == "invalid_request_error"
    with pytest.raises(anthropic.RateLimitError):
        anthropic_client().messages.create(
            model="broken", max_tokens=5, messages=[{"role": "user", "content": "x"}]
        )
    limited = make_key(models=["other"])
    with pytest.raises(anthropic.PermissionDeniedError):
        anthropic_client(limited).messages.create(
            model="gpt", max_tokens=5, messages=[{"role": "user", "content": "x"}]
        )


def test_messages_without_v1_prefix_and_count_tokens(gateway_server, openai_upstream):
    import httpx2 as httpx

    openai_upstream("gpt", "gpt-4o-mini")
    headers = {"x-api-key": MASTER_KEY, "anthropic-version": "2023-06-01"}
    body = {"model": "gpt", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
    reply = httpx.post(gateway_server.url + "/messages", json=body, headers=headers)
    assert reply.status_code == 200 and reply.json()["content"][0]["text"] == "hi"
    counted = httpx.post(
        gateway_server.url + "/v1/messages/count_tokens",
        json={"model": "gpt", "messages": body["messages"]},
        headers=headers,
    )
    assert counted.status_code == 200 and counted.json()["input_tokens"] > 0
    bad = httpx.post(gateway_server.url + "/v1/messages", content=b"{nope", headers=headers)
    assert bad.status_code == 400 and bad.json()["type"] == "error"
