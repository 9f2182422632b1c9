"""Cooldowns: a deployment failing more than allowed_fails times in a minute is left out for
cooldown_time, never the group's last healthy one unless configured; rpm/tpm are hard
limits."""

from __future__ import annotations

import time

from tests.gateway.helpers import CHAT, E2E, HELLO, openai_error

pytestmark = E2E


def _models(fake_openai) -> list[str]:
    return [r.body["model"] for r in fake_openai.requests]


def _info(gateway_http, model_id):
    data = gateway_http.get("/v1/model/info", params={"litellm_model_id": model_id}).json()
    [entry] = data["data"]
    return entry["model_info"]


def test_cooldown_entry_and_exit(gateway_http, openai_upstream, fake_openai, router_config):
    router_config(allowed_fails=1, cooldown_time=1)
    flaky = openai_upstream("gpt", "gpt-4o-mini", order=1)
    openai_upstream("gpt", "gpt-4o", order=2)
    fake_openai.fake.fail("gpt-4o-mini", 500, 500)
    for _ in range(2):  # two failures: more than allowed_fails
        assert gateway_http.post(CHAT, json={"model": "gpt", "messages": HELLO}).status_code == 200
    assert _models(fake_openai) == ["gpt-4o-mini", "gpt-4o"] * 2
    info = _info(gateway_http, flaky.model_id)
    assert info["in_cooldown"] is True
    assert 0 < info["cooldown_remaining_s"] <= 1
    fake_openai.fake.reset()
    response = gateway_http.post(CHAT, json={"model": "gpt", "messages": HELLO})
    assert _models(fake_openai) == ["gpt-4o"]
    assert response.headers["x-litellm-attempted-retries"] == "0"
    time.sleep(1.1)
    fake_openai.fake.reset()
    assert gateway_http.post(CHAT, json={"model": "gpt", "messages": HELLO}).status_code == 200
    assert _models(fake_openai) == ["gpt-4o-mini"]
    assert _info(gateway_http, flaky.model_id)["in_cooldown"] is False


def test_the_clients_mistakes_do_not_cool_a_deployment_down(
    gateway_http, openai_upstream, fake_openai, router_config
):
    router_config(allowed_fails=0, cooldown_time=30)
    dep = openai_upstream("gpt", "gpt-4o-mini", order=1)
    openai_upstream("gpt", "gpt-4o", order=2)
    fake_openai.fake.fail("gpt-4o-mini", 400, 400)
    for _ in range(2):
        assert gateway_http.post(CHAT, json={"model": "gpt", "messages": HELLO}).status_code == 400
    assert _info(gateway_http, dep.model_id)["in_cooldown"] is False


def test_the_last_healthy_deployment_is_never_cooled_down(
    gateway_http, openai_upstream, fake_openai, router_config
):
    router_config(allowed_fails=0, cooldown_time=30, num_retries=0)
    dep = openai_upstream("gpt", "error-500")
    for _ in range(3):
        assert gateway_http.post(CHAT, json={"model": "gpt", "messages": HELLO}).status_code == 502
    assert len(fake_openai.requests) == 3
    assert _info(gateway_http, dep.model_id)["in_cooldown"] is False


def test_the_last_deployment_cools_down_when_configured(
    gateway_http, openai_upstream, fake_openai, router_config
):
    router_config(allowed_fails=0, cooldown_time=30, num_retries=0, cooldown_last_deployment=True)
    openai_upstream("gpt", "error-500")
    assert gateway_http.post(CHAT, json={"model": "gpt", "messages": HELLO}).status_code == 502
    response = gateway_http.post(CHAT, json={"model": "gpt", "messages": HELLO})
    assert response.status_code == 429
    assert openai_error(response)["code"] == "no_deployment_available"
    assert 25 <= int(response.headers["retry-after"]) <= 30
    assert len(fake_openai.requests) == 1


def test_health_shows_a_cooling_deployment(
    gateway_http, openai_upstream, fake_openai, router_config
):
    router_config(allowed_fails=0, cooldown_time=30, num_retries=0)
    flaky = openai_upstream("gpt", "gpt-4o-mini", order=1)
    openai_upstream("gpt", "gpt-4o", order=2)
    fake_openai.fake.fail("gpt-4o-mini", 503)
    gateway_http.post(CHAT, json={"model": "gpt", "messages": HELLO})
    health = gateway_http.get("/health").json()
    cooling = [e for e in health["unhealthy_endpoints"] if e["model_id"] == flaky.model_id]
    assert cooling and cooling[0]["cooldown_remaining_s"] > 0


def test_rpm_is_a_hard_limit(gateway_http, openai_upstream, fake_openai):
    openai_upstream("gpt", "gpt-4o-mini", rpm=2)
    for _ in range(2):
        assert gateway_http.post(CHAT, json={"model": "gpt", "messages": HELLO}).status_code == 200
    response = gateway_http.post(CHAT, json={"model": "gpt", "messages": HELLO})
    assert response.status_code == 429
    assert openai_error(response)["code"] == "no_deployment_available"
    assert 1 <= int(response.headers["retry-after"]) <= 60
    assert len(fake_openai.requests) == 2


def test_a_full_deployment_is_skipped(gateway_http, openai_upstream, fake_openai):
    openai_upstream("gpt", "gpt-4o-mini", rpm=1, order=1)
    openai_upstream("gpt", "gpt-4o", order=2)
    for _ in range(3):
        assert gateway_http.post(CHAT, json={"model": "gpt", "messages": HELLO}).status_code == 200
    assert _models(fake_openai) == ["gpt-4o-mini", "gpt-4o", "gpt-4o"]


def test_tpm_is_a_hard_limit(gateway_http, openai_upstream, fake_openai):
    openai_upstream("gpt", "gpt-4o-mini", tpm=12, order=1)
    openai_upstream("gpt", "gpt-4o", order=2)
    # The fake counts 6 prompt tokens and 3 completion tokens: 9 of the 12 this minute.
    for _ in range(2):
        assert gateway_http.post(CHAT, json={"model": "gpt", "messages": HELLO}).status_code == 200
    assert _models(fake_openai) == ["gpt-4o-mini", "gpt-4o"]
