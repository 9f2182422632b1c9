"""Retries: on another deployment at once, on the same one after a backoff or the upstream's
retry-after; num_retries and retry_policy from the config, the group and the request."""

from __future__ import annotations

import itertools

import pytest

from tests.gateway.helpers import CHAT, E2E, HELLO, openai_error, usage_rows

pytestmark = E2E


def _gaps(fake_openai) -> list[float]:
    times = [r.at for r in fake_openai.requests]
    return [b - a for a, b in itertools.pairwise(times)]


@pytest.mark.parametrize("stream", [False, True])
def test_429_is_retried_on_the_same_deployment_after_its_retry_after(
    gateway_server, gateway_http, openai_upstream, fake_openai, stream
):
    dep = openai_upstream("gpt", "gpt-4o-mini")
    fake_openai.fake.fail("gpt-4o-mini", 429)
    fake_openai.fake.retry_after = "0.4"
    body = {"model": "gpt", "messages": HELLO, "stream": stream}
    response = gateway_http.post(CHAT, json=body)
    assert response.status_code == 200, response.text
    assert response.headers["x-litellm-attempted-retries"] == "1"
    assert response.headers["x-litellm-model-id"] == dep.model_id
    assert len(fake_openai.requests) == 2
    assert 0.38 <= _gaps(fake_openai)[0] < 2.0
    [row] = usage_rows(gateway_server, 1)
    assert (row.status_code, row.retries, row.fallbacks) == (200, 1, 0)


def test_a_retry_after_beyond_the_longest_wait_is_not_waited_for(
    gateway_http, openai_upstream, fake_openai, settings
):
    settings.GATEWAY_RETRY_MAX_WAIT_S = 60
    openai_upstream("gpt", "gpt-4o-mini")
    fake_openai.fake.fail("gpt-4o-mini", 429)
    fake_openai.fake.retry_after = "120"
    response = gateway_http.post(CHAT, json={"model": "gpt", "messages": HELLO})
    assert response.status_code == 429
    assert response.headers["retry-after"] == "120"
    assert openai_error(response)["type"] == "rate_limit_error"
    assert len(fake_openai.requests) == 1


def test_backoff_grows_between_retries_of_the_only_deployment(
    gateway_http, openai_upstream, fake_openai, settings
):
    settings.GATEWAY_RETRY_BACKOFF_S = 0.5
    openai_upstream("gpt", "gpt-4o-mini")
    fake_openai.fake.fail("gpt-4o-mini", 500, 503)
    response = gateway_http.post(CHAT, json={"model": "gpt", "messages": HELLO})
    assert response.status_code == 200
    assert response.headers["x-litellm-attempted-retries"] == "2"
    first, second = _gaps(fake_openai)
    # 0.5 s then 1 s, each with up to 25 % jitter off.
    assert 0.37 <= first < 0.9
    assert 0.74 <= second < 1.6


def test_another_deployment_is_tried_at_once(gateway_http, openai_upstream, fake_openai):
    openai_upstream("gpt", "gpt-4o-mini", order=1)
    openai_upstream("gpt", "gpt-4o", order=2)
    fake_openai.fake.fail("gpt-4o-mini", 500)
    response = gateway_http.post(CHAT, json={"model": "gpt", "messages": HELLO})
    assert response.status_code == 200
    assert [r.body["model"] for r in fake_openai.requests] == ["gpt-4o-mini", "gpt-4o"]
    assert _gaps(fake_openai)[0] < 0.3


def test_num_retries_of_the_request_wins_and_is_not_forwarded(
    gateway_server, gateway_http, openai_upstream, fake_openai, router_config
):
    router_config(num_retries=3)
    openai_upstream("gpt", "gpt-4o-mini", order=1)
    openai_upstream("gpt", "gpt-4o", order=2)
    fake_openai.fake.fail("gpt-4o-mini", 500)
    body = {"model": "gpt", "messages": HELLO, "num_retries": 0}
    response = gateway_http.post(CHAT, json=body)
    assert response.status_code == 502
    assert response.headers["x-litellm-attempted-retries"] == "0"
    [recorded] = fake_openai.requests
    assert "num_retries" not in recorded.body


def test_num_retries_from_the_config(gateway_http, openai_upstream, fake_openai, router_config):
    router_config(litellm={"num_retries": 0})
    openai_upstream("gpt", "gpt-4o-mini")
    fake_openai.fake.fail("gpt-4o-mini", 503)
    response = gateway_http.post(CHAT, json={"model": "gpt", "messages": HELLO})
    assert response.status_code == 503
    assert len(fake_openai.requests) == 1


def test_num_retries_of_the_group(gateway_http, openai_upstream, fake_openai, router_config):
    from apps.routing.models import ModelGroup

    router_config(num_retries=0)
    openai_upstream("gpt", "gpt-4o-mini")
    ModelGroup.objects.filter(name="gpt").update(settings={"num_retries": 1})
    fake_openai.fake.fail("gpt-4o-mini", 503)
    fake_openai.fake.retry_after = None
    response = gateway_http.post(CHAT, json={"model": "gpt", "messages": HELLO})
    assert response.status_code == 200
    assert len(fake_openai.requests) == 2


def test_retry_policy_per_error_class(gateway_http, openai_upstream, fake_openai, router_config):
    router_config(
        retry_policy={"AuthenticationErrorRetries": 1, "InternalServerErrorRetries": 0},
        num_retries=3,
    )
    openai_upstream("gpt", "gpt-4o-mini", order=1)
    openai_upstream("gpt", "gpt-4o", order=2)
    fake_openai.fake.fail("gpt-4o-mini", 401)
    assert gateway_http.post(CHAT, json={"model": "gpt", "messages": HELLO}).status_code == 200
    assert [r.body["model"] for r in fake_openai.requests] == ["gpt-4o-mini", "gpt-4o"]
    fake_openai.fake.reset()
    fake_openai.fake.fail("gpt-4o-mini", 500)
    response = gateway_http.post(CHAT, json={"model": "gpt", "messages": HELLO})
    assert response.status_code == 502
    assert len(fake_openai.requests) == 1


@pytest.mark.parametrize("model", ["error-400", "context-exceeded", "content-filtered"])
def test_the_clients_own_mistakes_are_not_retried(
    gateway_http, openai_upstream, fake_openai, router_config, model
):
    router_config(num_retries=3)
    openai_upstream("gpt", model, order=1)
    openai_upstream("gpt", "gpt-4o", order=2)
    response = gateway_http.post(CHAT, json={"model": "gpt", "messages": HELLO})
    assert response.status_code == 400
    assert len(fake_openai.requests) == 1


def test_a_bad_num_retries_is_a_400_naming_it(gateway_http, openai_upstream, fake_openai):
    openai_upstream("gpt", "gpt-4o-mini")
    body = {"model": "gpt", "messages": HELLO, "num_retries": "many"}
    response = gateway_http.post(CHAT, json=body)
    assert response.status_code == 400
    assert "num_retries" in openai_error(response)["message"]
    assert fake_openai.requests == []


def test_request_timeout_applies_per_attempt(gateway_http, openai_upstream, fake_openai):
    openai_upstream("gpt", "slow-2000", order=1)
    openai_upstream("gpt", "gpt-4o", order=2)
    body = {"model": "gpt", "messages": HELLO, "timeout": 0.3}
    response = gateway_http.post(CHAT, json=body)
    assert response.status_code == 200
    assert [r.body["model"] for r in fake_openai.requests] == ["slow-2000", "gpt-4o"]
    assert "timeout" not in fake_openai.requests[-1].body
