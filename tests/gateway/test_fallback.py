"""Fallback between the deployments of a group: the next one is tried after a retryable
upstream failure (5xx, 429, timeout, refused connection), never after the client's own mistake
and never once a stream has started."""

from __future__ import annotations

import pytest

from tests.fakes.server import free_port
from tests.gateway.helpers import CHAT, E2E, HELLO, usage_rows

pytestmark = E2E


@pytest.mark.parametrize("first", ["error-503", "error-429", "error-500", "slow-3000", "refused"])
@pytest.mark.parametrize("stream", [False, True])
def test_retryable_failure_falls_back_to_the_next_deployment(
    gateway_server, gateway_http, openai_upstream, fake_openai, first, stream
):
    if first == "refused":
        openai_upstream("gpt", "x", order=1, api_base=f"http://127.0.0.1:{free_port()}/v1")
    else:
        openai_upstream("gpt", first, order=1, timeout=0.3, stream_timeout=0.3)
    second = openai_upstream("gpt", "gpt-4o-mini", order=2)
    body = {"model": "gpt", "messages": HELLO, "stream": stream}
    response = gateway_http.post(CHAT, json=body)
    assert response.status_code == 200
    assert response.headers["x-litellm-model-id"] == second.model_id
    assert "hello" in response.text
    models = [r.body["model"] for r in fake_openai.requests]
    assert models[-1] == "gpt-4o-mini"
    assert len(models) == (1 if first == "refused" else 2)
    [row] = usage_rows(gateway_server, 1)
    assert (row.status_code, row.deployment_id) == (200, second.model_id)
    assert row.prompt_tokens == 6


@pytest.mark.parametrize("first", ["error-400", "error-401", "error-404"])
def test_client_side_upstream_failure_does_not_fall_back(
    gateway_http, openai_upstream, fake_openai, first
):
    openai_upstream("gpt", first, order=1)
    openai_upstream("gpt", "gpt-4o-mini", order=2)
    response = gateway_http.post(CHAT, json={"model": "gpt", "messages": HELLO})
    assert response.status_code == int(first.split("-")[1])
    assert [r.body["model"] for r in fake_openai.requests] == [first]


def test_every_deployment_failing_returns_the_last_error(
    gateway_server, gateway_http, openai_upstream, fake_openai
):
    openai_upstream("gpt", "error-500", order=1)
    openai_upstream("gpt", "error-503", order=2)
    response = gateway_http.post(CHAT, json={"model": "gpt", "messages": HELLO})
    # num_retries is 2 by default (LiteLLM's): both deployments, then one of them again.
    assert response.status_code in (502, 503)
    assert response.headers["x-litellm-attempted-retries"] == "2"
    assert len(fake_openai.requests) == 3
    [row] = usage_rows(gateway_server, 1)
    assert row.status_code == response.status_code
    assert row.retries == 2


def test_no_fallback_once_the_stream_has_started(gateway_http, openai_upstream, fake_openai):
    openai_upstream("gpt", "stream-break", order=1)
    openai_upstream("gpt", "gpt-4o-mini", order=2)
    body = {"model": "gpt", "messages": HELLO, "stream": True}
    with gateway_http.stream("POST", CHAT, json=body) as response:
        raw = response.read()
    assert b'"upstream_disconnected"' in raw
    assert [r.body["model"] for r in fake_openai.requests] == ["stream-break"]
