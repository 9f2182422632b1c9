"""POST /v1/completions (legacy text completions), streamed and not.

https://platform.openai.com/docs/api-reference/completions/create
"""

from __future__ import annotations

import openai
import pytest

from tests.gateway.helpers import (
    E2E,
    gpt_4o_mini_cost,
    openai_error,
    sse_data,
    sse_json,
    usage_rows,
)

pytestmark = E2E


def test_completion_is_relayed(gateway_server, openai_upstream, openai_client, fake_openai):
    deployment = openai_upstream("text", "gpt-4o-mini")
    raw = openai_client().completions.with_raw_response.create(
        model="text", prompt="say this please", max_tokens=5, suffix="!"
    )
    reply = raw.parse()
    assert reply.choices[0].text == "say this please"
    assert reply.object == "text_completion"
    assert raw.headers["x-litellm-model-id"] == deployment.model_id
    [sent] = fake_openai.requests
    assert sent.path == "/v1/completions"
    assert sent.body == {
        "model": "gpt-4o-mini",
        "prompt": "say this please",
        "max_tokens": 5,
        "suffix": "!",
    }
    [row] = usage_rows(gateway_server, 1)
    assert (row.call_type, row.status_code) == ("completions", 200)
    assert (row.prompt_tokens, row.completion_tokens) == (3, 3)
    assert row.cost == gpt_4o_mini_cost(3, 3)


def test_completion_without_v1_prefix(gateway_server, gateway_http, openai_upstream):
    openai_upstream("text", "gpt-4o-mini")
    response = gateway_http.post("/completions", json={"model": "text", "prompt": "a b"})
    assert response.status_code == 200
    assert response.json()["choices"][0]["text"] == "a b"


@pytest.mark.parametrize("prompt", [["one two", "three"], [1, 2, 3], [[1, 2], [3]], ""])
def test_completion_prompt_shapes_are_accepted(openai_upstream, gateway_http, fake_openai, prompt):
    openai_upstream("text", "gpt-4o-mini")
    response = gateway_http.post("/v1/completions", json={"model": "text", "prompt": prompt})
    assert response.status_code == 200
    assert fake_openai.requests[-1].body["prompt"] == prompt


def test_streamed_completion_reassembles_and_hides_usage(
    gateway_server, openai_upstream, openai_client, fake_openai
):
    openai_upstream("text", "gpt-4o-mini")
    stream = openai_client().completions.create(model="text", prompt="one two three", stream=True)
    chunks = list(stream)
    assert "".join(c.choices[0].text for c in chunks) == "one two three "
    assert all(c.usage is None for c in chunks)
    assert fake_openai.requests[-1].body["stream_options"] == {"include_usage": True}
    [row] = usage_rows(gateway_server, 1)
    assert (row.prompt_tokens, row.completion_tokens, row.stream) == (3, 3, True)


def test_streamed_completion_with_usage_ends_with_usage_chunk(gateway_http, openai_upstream):
    openai_upstream("text", "gpt-4o-mini")
    body = {
        "model": "text",
        "prompt": "one two",
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    with gateway_http.stream("POST", "/v1/completions", json=body) as response:
        raw = response.read()
    assert response.headers["content-type"].startswith("text/event-stream")
    assert sse_data(raw)[-1] == b"[DONE]"
    chunks = sse_json(raw)
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"] == {"prompt_tokens": 2, "completion_tokens": 2, "total_tokens": 4}


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "text"}, "prompt"),
        ({"model": "text", "prompt": 5}, "prompt"),
        ({"model": "text", "prompt": []}, "prompt"),
        ({"model": "text", "prompt": [None]}, "prompt"),
        ({"model": "text", "prompt": "x", "best_of": "2"}, "best_of"),
        ({"model": "text", "prompt": "x", "echo": "yes"}, "echo"),
        ({"model": "text", "prompt": "x", "logprobs": 9}, "logprobs"),
        ({"model": "text", "prompt": "x", "max_tokens": 0}, "max_tokens"),
        ({"prompt": "x"}, "model"),
    ],
)
def test_completion_bad_input_is_400(gateway_http, openai_upstream, fake_openai, body, param):
    openai_upstream("text", "gpt-4o-mini")
    response = gateway_http.post("/v1/completions", json=body)
    assert response.status_code == 400
    assert openai_error(response)["param"] == param
    assert fake_openai.requests == []


def test_completion_upstream_error_maps_to_sdk_class(openai_upstream, openai_client):
    openai_upstream("text", "error-404")
    with pytest.raises(openai.NotFoundError):
        openai_client().completions.create(model="text", prompt="x")
