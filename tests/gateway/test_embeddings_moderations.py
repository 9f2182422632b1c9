"""POST /v1/embeddings and /v1/moderations.

https://platform.openai.com/docs/api-reference/embeddings/create
https://platform.openai.com/docs/api-reference/moderations/create
"""

from __future__ import annotations

from decimal import Decimal

import openai
import pytest

from tests.gateway.helpers import E2E, openai_error, usage_rows

pytestmark = E2E


@pytest.mark.parametrize("prefix", ["/v1", ""])
def test_embeddings_are_relayed(gateway_server, gateway_http, openai_upstream, fake_openai, prefix):
    openai_upstream("embed", "text-embedding-3-small")
    body = {"model": "embed", "input": ["hello world", "bye"], "dimensions": 3, "user": "u1"}
    response = gateway_http.post(prefix + "/embeddings", json=body)
    assert response.status_code == 200
    data = response.json()
    assert [d["index"] for d in data["data"]] == [0, 1]
    assert data["usage"] == {"prompt_tokens": 3, "total_tokens": 3}
    [sent] = fake_openai.requests
    assert sent.path == "/v1/embeddings"
    assert sent.body == {**body, "model": "text-embedding-3-small"}
    [row] = usage_rows(gateway_server, 1)
    assert (row.call_type, row.status_code, row.prompt_tokens) == ("embeddings", 200, 3)
    # text-embedding-3-small: $0.02 per million tokens (apps/usage/data/model_prices.json).
    assert row.cost == Decimal("0.02") * 3 / 1_000_000
    assert row.end_user == "u1"


def test_embeddings_with_the_sdk(openai_upstream, openai_client):
    openai_upstream("embed", "text-embedding-3-small")
    result = openai_client().embeddings.create(model="embed", input="hi")
    assert result.data[0].embedding == pytest.approx([0.1, 0.2, 0.3])
    assert result.usage.prompt_tokens == 1


def test_embeddings_metadata_is_logged_not_forwarded(
    gateway_server, gateway_http, openai_upstream, fake_openai
):
    openai_upstream("embed", "text-embedding-3-small")
    body = {"model": "embed", "input": "x", "metadata": {"job": "index-7"}}
    assert gateway_http.post("/v1/embeddings", json=body).status_code == 200
    assert "metadata" not in fake_openai.requests[0].body
    [row] = usage_rows(gateway_server, 1)
    assert row.metadata == {"job": "index-7"}


def test_embeddings_ignore_a_stream_flag(gateway_http, openai_upstream, fake_openai):
    """``stream`` means nothing to embeddings: the answer is the JSON list, not an event stream."""
    openai_upstream("embed", "text-embedding-3-small")
    body = {"model": "embed", "input": "x", "stream": True}
    response = gateway_http.post("/v1/embeddings", json=body)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json()["data"][0]["embedding"] == pytest.approx([0.1, 0.2, 0.3])


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "embed"}, "input"),
        ({"model": "embed", "input": ""}, "input"),
        ({"model": "embed", "input": []}, "input"),
        ({"model": "embed", "input": {"a": 1}}, "input"),
        ({"model": "embed", "input": "x", "encoding_format": "int8"}, "encoding_format"),
        ({"model": "embed", "input": "x", "dimensions": 0}, "dimensions"),
        ({"model": "embed", "input": "x", "dimensions": "3"}, "dimensions"),
        ({"model": "embed", "input": "x", "user": 7}, "user"),
        ({"input": "x"}, "model"),
    ],
)
def test_embeddings_bad_input_is_400(gateway_http, openai_upstream, fake_openai, body, param):
    openai_upstream("embed", "text-embedding-3-small")
    response = gateway_http.post("/v1/embeddings", json=body)
    assert response.status_code == 400
    assert openai_error(response)["param"] == param
    assert fake_openai.requests == []


def test_embeddings_upstream_error(openai_upstream, openai_client):
    openai_upstream("embed", "error-429")
    with pytest.raises(openai.RateLimitError):
        openai_client().embeddings.create(model="embed", input="x")


@pytest.mark.parametrize("prefix", ["/v1", ""])
def test_moderations_are_relayed(
    gateway_server, gateway_http, openai_upstream, fake_openai, prefix
):
    openai_upstream("mod", "omni-moderation-latest")
    response = gateway_http.post(prefix + "/moderations", json={"model": "mod", "input": "hi"})
    assert response.status_code == 200
    assert response.json()["results"][0]["flagged"] is False
    [sent] = fake_openai.requests
    assert sent.path == "/v1/moderations"
    assert sent.body == {"model": "omni-moderation-latest", "input": "hi"}
    [row] = usage_rows(gateway_server, 1)
    assert (row.call_type, row.status_code) == ("moderations", 200)


def test_moderations_default_model(openai_upstream, openai_client, fake_openai):
    """Without ``model`` the request goes to the group named like OpenAI's default model."""
    openai_upstream("omni-moderation-latest", "omni-moderation-2024-09-26")
    result = openai_client().moderations.create(input="some text")
    assert result.results[0].flagged is False
    assert fake_openai.requests[0].body["model"] == "omni-moderation-2024-09-26"


@pytest.mark.parametrize(
    "body", [{"model": "mod"}, {"model": "mod", "input": 3}, {"model": "mod", "input": []}]
)
def test_moderations_bad_input_is_400(gateway_http, openai_upstream, fake_openai, body):
    openai_upstream("mod", "omni-moderation-latest")
    response = gateway_http.post("/v1/moderations", json=body)
    assert response.status_code == 400
    assert openai_error(response)["param"] == "input"
    assert fake_openai.requests == []
