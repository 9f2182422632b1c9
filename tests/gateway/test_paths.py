"""Path shapes that carry the model group in the URL."""

from __future__ import annotations

import httpx2 as httpx

from apps.usage.models import UsageLog
from tests.conftest import MASTER_KEY


def test_engines_path_uses_the_model_in_the_path(gateway_server, openai_upstream, fake_openai):
    openai_upstream("gpt/with-slash", "gpt-4o-mini")
    response = httpx.post(
        gateway_server.url + "/engines/gpt/with-slash/chat/completions",
        headers={"Authorization": f"Bearer {MASTER_KEY}"},
        json={"model": "ignored", "messages": [{"role": "user", "content": "via engines"}]},
    )
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == "via engines"
    assert response.headers["x-litellm-model-group"] == "gpt/with-slash"


def test_base_model_prices_a_custom_deployment_name(
    gateway_server, make_deployment, fake_openai, openai_client
):
    make_deployment(
        "custom",
        "openai",
        "my-deployment-name",
        api_base=fake_openai.url + "/v1",
        model_info={"base_model": "openai/gpt-4o-mini"},
    )
    reply = openai_client().chat.completions.create(
        model="custom", messages=[{"role": "user", "content": "price me"}]
    )
    gateway_server.flush_usage()
    row = UsageLog.objects.get()
    # gpt-4o-mini: $0.15 / $0.60 per million input / output tokens.
    expected = (reply.usage.prompt_tokens * 0.15 + reply.usage.completion_tokens * 0.60) / 1e6
    assert row.cost > 0 and abs(float(row.cost) - expected) < 1e-12


def test_a_refused_call_still_leaves_one_usage_row(gateway_server, openai_upstream):
    openai_upstream("gpt", "gpt-4o-mini")
    response = httpx.post(
        gateway_server.url + "/v1/chat/completions",
        headers={"Authorization": "Bearer sk-not-a-key"},
        json={"model": "gpt", "messages": [{"role": "user", "content": "x"}]},
    )
    assert response.status_code == 401
    gateway_server.flush_usage()
    row = UsageLog.objects.get()
    assert (row.status_code, row.key_id, row.error_type) == (401, None, "invalid_api_key")
