"""Batch completions: ``model: "a,b"`` answers a list of completions, one call (and one usage
row) per model, an error object in place of a failed one; a stream is refused."""

from __future__ import annotations

import pytest

from tests.gateway.helpers import CHAT, E2E, HELLO, openai_error, usage_rows

pytestmark = E2E


def test_two_models_answer_two_completions(
    gateway_server, gateway_http, openai_upstream, fake_openai
):
    openai_upstream("gpt", "gpt-4o-mini")
    openai_upstream("other", "gpt-4o")
    response = gateway_http.post(CHAT, json={"model": "gpt, other", "messages": HELLO})
    assert response.status_code == 200, response.text
    first, second = response.json()
    assert (first["object"], second["object"]) == ("chat.completion", "chat.completion")
    assert first["choices"][0]["message"]["content"] == "hello there world"
    assert {r.body["model"] for r in fake_openai.requests} == {"gpt-4o-mini", "gpt-4o"}
    rows = usage_rows(gateway_server, 2)
    assert sorted(r.model_group for r in rows) == ["gpt", "other"]
    rid = response.headers["x-request-id"]
    assert sorted(r.request_id for r in rows) == [f"{rid}-0", f"{rid}-1"]
    assert all(r.status_code == 200 and r.prompt_tokens == 6 for r in rows)


def test_a_failing_model_gives_an_error_object_in_its_place(
    gateway_server, gateway_http, openai_upstream, fake_openai
):
    openai_upstream("gpt", "gpt-4o-mini")
    openai_upstream("broken", "error-500")
    response = gateway_http.post(
        CHAT, json={"model": "broken,gpt", "messages": HELLO, "num_retries": 0}
    )
    assert response.status_code == 200
    broken, ok = response.json()
    assert set(broken["error"]) == {"message", "type", "param", "code"}
    assert ok["object"] == "chat.completion"
    rows = usage_rows(gateway_server, 2)
    assert sorted(r.status_code for r in rows) == [200, 502]


@pytest.mark.parametrize(("model", "status"), [("gpt,secret", 403), ("gpt,missing", 404)])
def test_a_model_not_served_or_not_allowed_refuses_the_batch(
    gateway_server, gateway_http, openai_upstream, fake_openai, make_key, model, status
):
    openai_upstream("gpt", "gpt-4o-mini")
    openai_upstream("secret", "gpt-4o")
    key = make_key(models=["gpt", "missing"])
    response = gateway_http.post(
        CHAT,
        json={"model": model, "messages": HELLO},
        headers={"authorization": f"Bearer {key}"},
    )
    assert response.status_code == status
    assert model.split(",")[1] in openai_error(response)["message"]
    assert fake_openai.requests == []
    [row] = usage_rows(gateway_server, 1)
    assert row.status_code == status


def test_a_batch_cannot_be_streamed(gateway_server, gateway_http, openai_upstream, fake_openai):
    openai_upstream("gpt", "gpt-4o-mini")
    body = {"model": "gpt,gpt", "messages": HELLO, "stream": True}
    response = gateway_http.post(CHAT, json=body)
    assert response.status_code == 400
    error = openai_error(response)
    assert error["param"] == "stream" and "batch" in error["message"]
    assert fake_openai.requests == []
    [row] = usage_rows(gateway_server, 1)
    assert row.status_code == 400


@pytest.mark.parametrize("model", ["gpt,", ",gpt", "gpt,,gpt", ",".join(["gpt"] * 11)])
def test_bad_model_lists_are_400s(gateway_http, openai_upstream, fake_openai, model):
    openai_upstream("gpt", "gpt-4o-mini")
    response = gateway_http.post(CHAT, json={"model": model, "messages": HELLO})
    assert response.status_code == 400
    assert openai_error(response)["param"] == "model"
    assert fake_openai.requests == []


def test_the_models_are_called_concurrently(gateway_http, openai_upstream, fake_openai):
    openai_upstream("a", "slow-400")
    openai_upstream("b", "slow-400")
    import time

    start = time.monotonic()
    response = gateway_http.post(CHAT, json={"model": "a,b", "messages": HELLO})
    assert response.status_code == 200 and len(response.json()) == 2
    assert time.monotonic() - start < 0.75


def test_each_part_keeps_the_header_tags(
    gateway_server, gateway_http, openai_upstream, fake_openai
):
    openai_upstream("gpt", "gpt-4o-mini")
    openai_upstream("other", "gpt-4o")
    response = gateway_http.post(
        CHAT,
        json={"model": "gpt,other", "messages": HELLO},
        headers={"x-litellm-tags": "team-a"},
    )
    assert response.status_code == 200
    rows = usage_rows(gateway_server, 2)
    assert all(r.metadata.get("tags") == ["team-a"] for r in rows), [r.metadata for r in rows]


def test_each_part_is_admitted_against_the_keys_limits(
    gateway_server, gateway_http, openai_upstream, fake_openai, make_key
):
    openai_upstream("gpt", "gpt-4o-mini")
    key = make_key(models=["gpt"], rpm_limit=2)
    response = gateway_http.post(
        CHAT,
        json={"model": "gpt,gpt,gpt", "messages": HELLO},
        headers={"authorization": f"Bearer {key}"},
    )
    assert response.status_code == 200
    parts = response.json()
    assert sum(1 for p in parts if p.get("object") == "chat.completion") == 2
    [refused] = [p for p in parts if "error" in p]
    assert refused["error"]["type"] == "rate_limit_error"
    assert len(fake_openai.requests) == 2
    rows = usage_rows(gateway_server, 3)
    assert sorted(r.status_code for r in rows) == [200, 200, 429]
