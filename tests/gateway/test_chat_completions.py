"""POST /v1/chat/completions (non-stream) through the real server with the official SDK."""

from __future__ import annotations

from decimal import Decimal

import openai
import pytest

from tests.conftest import MASTER_KEY, UPSTREAM_KEY
from tests.gateway.helpers import CHAT, E2E, HELLO, gpt_4o_mini_cost, usage_rows

pytestmark = E2E


@pytest.mark.parametrize("prefix", ["/v1", ""])
def test_chat_answer_is_relayed_with_and_without_v1_prefix(
    gateway_server, openai_upstream, fake_openai, prefix
):
    openai_upstream("gpt", "gpt-4o-mini")
    client = openai.OpenAI(base_url=gateway_server.url + prefix, api_key=MASTER_KEY, max_retries=0)
    reply = client.chat.completions.create(model="gpt", messages=HELLO)
    assert reply.choices[0].message.content == "hello there world"
    assert reply.choices[0].finish_reason == "stop"
    assert reply.object == "chat.completion"
    assert reply.usage.prompt_tokens == 6 and reply.usage.completion_tokens == 3
    [sent] = fake_openai.requests
    assert sent.path == "/v1/chat/completions"
    assert sent.body["model"] == "gpt-4o-mini"
    assert sent.headers["Authorization"] == f"Bearer {UPSTREAM_KEY}"


def test_unknown_parameters_are_forwarded_untouched(openai_upstream, openai_client, fake_openai):
    openai_upstream("gpt", "gpt-4o-mini")
    extra = {
        "top_k": 40,
        "repetition_penalty": 1.1,
        "vendor_options": {"nested": [1, {"deep": None}], "flag": True},
        "service_tier": "flex",
        "temperature": 0.2,
        "logit_bias": {"50256": -100},
        "reasoning_effort": "low",
    }
    openai_client().chat.completions.create(model="gpt", messages=HELLO, extra_body=extra)
    [sent] = fake_openai.requests
    assert sent.body == {"model": "gpt-4o-mini", "messages": HELLO, **extra}


def test_metadata_is_logged_and_not_forwarded(
    gateway_server, openai_upstream, openai_client, fake_openai
):
    openai_upstream("gpt", "gpt-4o-mini")
    metadata = {"trace_id": "t-123", "session": "abc"}
    openai_client().chat.completions.create(model="gpt", messages=HELLO, metadata=metadata)
    [sent] = fake_openai.requests
    assert "metadata" not in sent.body
    [row] = usage_rows(gateway_server, 1)
    assert row.metadata == metadata


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("drop_params", True),
        ("fallbacks", ["other"]),
        ("num_retries", 2),
        ("caching", False),
        ("tags", ["a", "b"]),
        ("litellm_metadata", {"x": 1}),
        ("guardrails", ["pii"]),
        ("mock_response", "mocked"),
    ],
)
def test_gateway_only_fields_are_not_forwarded(
    openai_upstream, openai_client, fake_openai, field, value
):
    openai_upstream("gpt", "gpt-4o-mini")
    openai_client().chat.completions.create(
        model="gpt", messages=HELLO, extra_body={field: value, "kept": 1}
    )
    [sent] = fake_openai.requests
    assert field not in sent.body
    assert sent.body["kept"] == 1


def test_tool_call_round_trip(openai_upstream, openai_client, fake_openai):
    openai_upstream("tools", "tool-caller")
    tool = {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
    client = openai_client()
    first = client.chat.completions.create(model="tools", messages=HELLO, tools=[tool])
    call = first.choices[0].message.tool_calls[0]
    assert first.choices[0].finish_reason == "tool_calls"
    assert (call.function.name, call.function.arguments) == ("get_weather", '{"city": "Paris"}')
    messages = [
        *HELLO,
        first.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "sunny"},
    ]
    client.chat.completions.create(model="tools", messages=messages, tools=[tool])
    assert fake_openai.requests[-1].body["messages"] == messages
    assert fake_openai.requests[-1].body["tools"] == [tool]


def test_content_parts_are_accepted(openai_upstream, openai_client, fake_openai):
    openai_upstream("gpt", "gpt-4o-mini")
    content = [
        {"type": "text", "text": "describe"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
    ]
    reply = openai_client().chat.completions.create(
        model="gpt", messages=[{"role": "user", "content": content}]
    )
    assert reply.choices[0].message.content == "describe"
    assert fake_openai.requests[-1].body["messages"][0]["content"] == content


def test_response_headers_name_request_group_deployment_and_cost(
    gateway_server, openai_upstream, openai_client
):
    deployment = openai_upstream("gpt", "gpt-4o-mini")
    raw = openai_client().chat.completions.with_raw_response.create(model="gpt", messages=HELLO)
    reply = raw.parse()
    request_id = raw.headers["x-request-id"]
    assert request_id.startswith("req-") and len(request_id) > 10
    assert raw.headers["x-litellm-call-id"] == request_id
    assert raw.headers["x-litellm-model-group"] == "gpt"
    assert raw.headers["x-litellm-model-id"] == deployment.model_id
    assert raw.headers["content-type"] == "application/json"
    cost = Decimal(raw.headers["x-litellm-response-cost"])
    expected = gpt_4o_mini_cost(reply.usage.prompt_tokens, reply.usage.completion_tokens)
    assert cost == expected
    [row] = usage_rows(gateway_server, 1)
    assert row.request_id == request_id
    assert row.cost == expected


def test_two_requests_get_different_request_ids(openai_upstream, openai_client):
    openai_upstream("gpt", "gpt-4o-mini")
    client = openai_client()
    ids = {
        client.chat.completions.with_raw_response.create(model="gpt", messages=HELLO).headers[
            "x-request-id"
        ]
        for _ in range(3)
    }
    assert len(ids) == 3


def test_usage_row_of_a_chat_has_tokens_cost_and_parties(
    gateway_server, openai_upstream, openai_client, make_key
):
    deployment = openai_upstream("gpt", "gpt-4o-mini")
    key = make_key(key_alias="svc", user_id="u-42")
    reply = openai_client(key).chat.completions.create(
        model="gpt", messages=HELLO, user="end-user-7"
    )
    [row] = usage_rows(gateway_server, 1)
    assert (row.status_code, row.call_type, row.stream) == (200, "chat", False)
    assert (row.model_group, row.deployment_id) == ("gpt", deployment.model_id)
    assert (row.provider, row.upstream_model) == ("openai", "gpt-4o-mini")
    assert row.prompt_tokens == reply.usage.prompt_tokens == 6
    assert row.completion_tokens == reply.usage.completion_tokens == 3
    assert row.total_tokens == 9
    assert row.cost == gpt_4o_mini_cost(6, 3)
    assert (row.key_alias, row.user_id, row.end_user) == ("svc", "u-42", "end-user-7")
    assert row.error_type == "" and row.error_message == ""
    assert row.end_time >= row.start_time


def test_deployment_price_override_wins_over_the_table(
    gateway_server, openai_upstream, openai_client
):
    openai_upstream(
        "gpt",
        "gpt-4o-mini",
        input_cost_per_token=Decimal("0.001"),
        output_cost_per_token=Decimal("0.002"),
    )
    openai_client().chat.completions.create(model="gpt", messages=HELLO)
    [row] = usage_rows(gateway_server, 1)
    assert row.cost == Decimal("0.001") * 6 + Decimal("0.002") * 3


def test_model_without_a_known_price_costs_zero(gateway_server, openai_upstream, openai_client):
    openai_upstream("local", "my-finetune-xyz")
    raw = openai_client().chat.completions.with_raw_response.create(model="local", messages=HELLO)
    assert Decimal(raw.headers["x-litellm-response-cost"]) == 0
    [row] = usage_rows(gateway_server, 1)
    assert row.cost == 0 and row.prompt_tokens == 6


def test_admin_added_deployment_serves_without_restart(openai_upstream, openai_client, fake_openai):
    openai_upstream("gpt", "gpt-4o-mini")
    client = openai_client()
    client.chat.completions.create(model="gpt", messages=HELLO)
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="newer", messages=HELLO)
    openai_upstream("newer", "gpt-4o")
    reply = client.chat.completions.create(model="newer", messages=HELLO)
    assert reply.choices[0].message.content == "hello there world"
    assert fake_openai.requests[-1].body["model"] == "gpt-4o"


def test_chat_path_with_trailing_slash(gateway_http, openai_upstream):
    openai_upstream("gpt", "gpt-4o-mini")
    response = gateway_http.post(CHAT + "/", json={"model": "gpt", "messages": HELLO})
    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["content"] == "hello there world"
