"""Fallback groups: fallbacks (router_settings, litellm_settings, the group's settings, the
request), default_fallbacks, context_window_fallbacks, content_policy_fallbacks, and the
mock_testing_* fields that trigger them."""

from __future__ import annotations

import pytest

from tests.gateway.helpers import CHAT, E2E, HELLO, openai_error, usage_rows

pytestmark = E2E


def _models(fake_openai) -> list[str]:
    return [r.body["model"] for r in fake_openai.requests]


@pytest.mark.parametrize("where", ["router", "litellm", "group", "request", "default", "star"])
def test_generic_fallback_answers_when_the_group_fails(
    gateway_server, gateway_http, openai_upstream, fake_openai, router_config, where
):
    from apps.routing.models import ModelGroup

    openai_upstream("gpt", "error-503")
    backup = openai_upstream("backup", "gpt-4o")
    body = {"model": "gpt", "messages": HELLO, "num_retries": 0}
    if where == "router":
        router_config(fallbacks=[{"gpt": ["backup"]}])
    elif where == "litellm":
        router_config(litellm={"fallbacks": [{"gpt": ["backup"]}]})
    elif where == "group":
        ModelGroup.objects.filter(name="gpt").update(settings={"fallbacks": ["backup"]})
    elif where == "request":
        body["fallbacks"] = ["backup"]
    elif where == "default":
        router_config(default_fallbacks=["backup"])
    else:
        router_config(fallbacks=[{"*": ["backup"]}])
    response = gateway_http.post(CHAT, json=body)
    assert response.status_code == 200, response.text
    assert response.headers["x-litellm-model-group"] == "backup"
    assert response.headers["x-litellm-model-id"] == backup.model_id
    assert response.headers["x-litellm-attempted-fallbacks"] == "1"
    assert _models(fake_openai) == ["error-503", "gpt-4o"]
    assert all("fallbacks" not in r.body for r in fake_openai.requests)
    [row] = usage_rows(gateway_server, 1)
    assert (row.model_group, row.fallback_from, row.fallbacks) == ("backup", "gpt", 1)
    assert row.deployment_id == backup.model_id


def test_fallbacks_are_tried_in_order_until_one_answers(
    gateway_http, openai_upstream, fake_openai, router_config
):
    router_config(fallbacks=[{"gpt": ["missing", "second", "third"]}], num_retries=0)
    openai_upstream("gpt", "error-500")
    openai_upstream("second", "error-429")
    openai_upstream("third", "gpt-4o")
    response = gateway_http.post(CHAT, json={"model": "gpt", "messages": HELLO})
    assert response.status_code == 200
    assert response.headers["x-litellm-attempted-fallbacks"] == "2"
    assert _models(fake_openai) == ["error-500", "error-429", "gpt-4o"]


def test_every_fallback_failing_returns_the_last_error(
    gateway_http, openai_upstream, fake_openai, router_config
):
    router_config(fallbacks=[{"gpt": ["backup"]}], num_retries=0)
    openai_upstream("gpt", "error-500")
    openai_upstream("backup", "error-503")
    response = gateway_http.post(CHAT, json={"model": "gpt", "messages": HELLO})
    assert response.status_code == 503
    assert openai_error(response)["type"]


def test_no_generic_fallback_after_the_clients_own_mistake(
    gateway_http, openai_upstream, fake_openai, router_config
):
    router_config(fallbacks=[{"gpt": ["backup"]}])
    openai_upstream("gpt", "error-400")
    openai_upstream("backup", "gpt-4o")
    response = gateway_http.post(CHAT, json={"model": "gpt", "messages": HELLO})
    assert response.status_code == 400
    assert _models(fake_openai) == ["error-400"]


@pytest.mark.parametrize("stream", [False, True])
def test_context_window_fallback_after_the_upstreams_context_error(
    gateway_http, openai_upstream, fake_openai, router_config, stream
):
    router_config(context_window_fallbacks=[{"gpt": ["big"]}], fallbacks=[{"gpt": ["wrong"]}])
    openai_upstream("gpt", "context-exceeded")
    openai_upstream("big", "gpt-4.1")
    openai_upstream("wrong", "gpt-4o")
    body = {"model": "gpt", "messages": HELLO, "stream": stream}
    response = gateway_http.post(CHAT, json=body)
    assert response.status_code == 200
    assert response.headers["x-litellm-model-group"] == "big"
    assert _models(fake_openai) == ["context-exceeded", "gpt-4.1"]


def test_content_policy_fallback(gateway_http, openai_upstream, fake_openai, router_config):
    router_config(content_policy_fallbacks=[{"gpt": ["lenient"]}])
    openai_upstream("gpt", "content-filtered")
    openai_upstream("lenient", "gpt-4o")
    response = gateway_http.post(CHAT, json={"model": "gpt", "messages": HELLO})
    assert response.status_code == 200
    assert _models(fake_openai) == ["content-filtered", "gpt-4o"]


def test_context_window_precheck_skips_deployments_too_small(
    gateway_http, openai_upstream, fake_openai
):
    openai_upstream("gpt", "gpt-4o-mini", order=1, model_info={"max_input_tokens": 8})
    roomy = openai_upstream("gpt", "gpt-4o", order=2, model_info={"max_input_tokens": 10000})
    long_prompt = [{"role": "user", "content": "word " * 200}]
    response = gateway_http.post(CHAT, json={"model": "gpt", "messages": long_prompt})
    assert response.status_code == 200
    assert response.headers["x-litellm-model-id"] == roomy.model_id
    assert _models(fake_openai) == ["gpt-4o"]


def test_context_window_precheck_falls_back_or_says_why(
    gateway_http, openai_upstream, fake_openai, router_config
):
    openai_upstream("gpt", "gpt-4o-mini", model_info={"max_input_tokens": 8})
    long_prompt = [{"role": "user", "content": "word " * 200}]
    response = gateway_http.post(CHAT, json={"model": "gpt", "messages": long_prompt})
    assert response.status_code == 400
    assert openai_error(response)["code"] == "context_length_exceeded"
    assert fake_openai.requests == []
    router_config(context_window_fallbacks=[{"gpt": ["big"]}])
    openai_upstream("big", "gpt-4.1")
    response = gateway_http.post(CHAT, json={"model": "gpt", "messages": long_prompt})
    assert response.status_code == 200
    assert _models(fake_openai) == ["gpt-4.1"]


@pytest.mark.parametrize(
    ("field", "setting"),
    [
        ("mock_testing_fallbacks", "fallbacks"),
        ("mock_testing_rate_limit_error", "fallbacks"),
        ("mock_testing_context_fallbacks", "context_window_fallbacks"),
        ("mock_testing_content_policy_fallbacks", "content_policy_fallbacks"),
    ],
)
def test_mock_testing_fields_trigger_fallbacks_and_are_not_forwarded(
    gateway_http, openai_upstream, fake_openai, router_config, field, setting
):
    router_config(**{setting: [{"gpt": ["backup"]}]})
    openai_upstream("gpt", "gpt-4o-mini")
    openai_upstream("backup", "gpt-4o")
    response = gateway_http.post(CHAT, json={"model": "gpt", "messages": HELLO, field: True})
    assert response.status_code == 200, response.text
    assert response.headers["x-litellm-model-group"] == "backup"
    [recorded] = fake_openai.requests
    assert recorded.body["model"] == "gpt-4o"
    assert field not in recorded.body


def test_mock_testing_fallbacks_without_fallbacks_is_the_mock_error(
    gateway_http, openai_upstream, fake_openai
):
    openai_upstream("gpt", "gpt-4o-mini")
    body = {"model": "gpt", "messages": HELLO, "mock_testing_fallbacks": True}
    response = gateway_http.post(CHAT, json=body)
    assert response.status_code == 500
    assert "mock" in openai_error(response)["message"]
    assert fake_openai.requests == []


def test_request_fallbacks_only_to_models_the_key_may_use(
    gateway_http, openai_upstream, fake_openai, make_key
):
    openai_upstream("gpt", "error-500")
    openai_upstream("secret", "gpt-4o")
    key = make_key(models=["gpt"])
    body = {"model": "gpt", "messages": HELLO, "fallbacks": ["secret"]}
    response = gateway_http.post(CHAT, json=body, headers={"authorization": f"Bearer {key}"})
    assert response.status_code == 403
    assert "secret" in openai_error(response)["message"]
    assert fake_openai.requests == []


def test_a_rate_limited_group_goes_to_its_fallback_without_waiting(
    gateway_http, openai_upstream, fake_openai, router_config
):
    router_config(fallbacks=[{"gpt": ["backup"]}], num_retries=3)
    openai_upstream("gpt", "error-429")
    openai_upstream("backup", "gpt-4o")
    fake_openai.fake.retry_after = "0.8"
    response = gateway_http.post(CHAT, json={"model": "gpt", "messages": HELLO})
    assert response.status_code == 200
    assert response.headers["x-litellm-attempted-retries"] == "0"
    assert _models(fake_openai) == ["error-429", "gpt-4o"]
    assert fake_openai.requests[1].at - fake_openai.requests[0].at < 0.5
