"""The management API through the running gateway: parallel writes, and models added or
removed over the API served (or refused) at once."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import openai
import pytest

from apps.keys.models import VirtualKey
from apps.teams.models import GatewayUser
from tests.conftest import UPSTREAM_KEY


def _parallel(gateway_http: Any, path: str, bodies: list[dict[str, Any]]) -> list[Any]:
    with ThreadPoolExecutor(len(bodies)) as pool:
        return list(pool.map(lambda body: gateway_http.post(path, json=body), bodies))


def test_ten_parallel_key_generations_all_succeed(gateway_http: Any) -> None:
    answers = _parallel(gateway_http, "/key/generate", [{"key_alias": "same"}] * 10)
    assert [a.status_code for a in answers] == [200] * 10
    assert len({a.json()["key"] for a in answers}) == 10
    assert VirtualKey.objects.filter(key_alias="same").count() == 10


def test_ten_parallel_user_creations_all_succeed(gateway_http: Any) -> None:
    answers = _parallel(gateway_http, "/user/new", [{"user_alias": "same"}] * 10)
    assert [a.status_code for a in answers] == [200] * 10
    assert len({a.json()["user_id"] for a in answers}) == 10
    assert GatewayUser.objects.filter(user_alias="same").count() == 10


def test_ten_parallel_teams_with_one_alias_all_succeed(gateway_http: Any) -> None:
    answers = _parallel(gateway_http, "/team/new", [{"team_alias": "same"}] * 10)
    assert [a.status_code for a in answers] == [200] * 10


def test_a_model_added_over_the_api_is_served_at_once_and_gone_when_deleted(
    gateway_http: Any, fake_openai: Any, openai_client: Any
) -> None:
    client = openai_client()
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="fresh", messages=[{"role": "user", "content": "hi"}])
    created = gateway_http.post(
        "/model/new",
        json={
            "model_name": "fresh",
            "litellm_params": {
                "model": "openai/gpt-4o-mini",
                "api_base": fake_openai.url + "/v1",
                "api_key": UPSTREAM_KEY,
            },
            "model_info": {"id": "fresh-1"},
        },
    )
    assert created.status_code == 200, created.json()
    assert UPSTREAM_KEY not in created.text
    reply = client.chat.completions.create(
        model="fresh", messages=[{"role": "user", "content": "hi"}]
    )
    assert reply.choices[0].message.content
    info = gateway_http.get("/model/info").json()["data"]
    assert [m["model_info"]["id"] for m in info] == ["fresh-1"]
    assert UPSTREAM_KEY not in gateway_http.get("/v1/model/info").text
    updated = gateway_http.post(
        "/model/update",
        json={"model_info": {"id": "fresh-1"}, "litellm_params": {"rpm": 7}},
    )
    assert updated.json()["litellm_params"]["rpm"] == 7
    assert updated.json()["litellm_params"]["api_base"] == fake_openai.url + "/v1"
    client.chat.completions.create(model="fresh", messages=[{"role": "user", "content": "hi"}])
    deleted = gateway_http.post("/model/delete", json={"id": "fresh-1"})
    assert deleted.status_code == 200
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="fresh", messages=[{"role": "user", "content": "hi"}])


def test_model_routes_validate_and_are_for_proxy_admins(gateway_http: Any, make_key: Any) -> None:
    bad = gateway_http.post(
        "/model/new", json={"model_name": "x", "litellm_params": {"model": "nope/x"}}
    )
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "litellm_params"
    missing = gateway_http.post("/model/delete", json={"id": "missing"})
    assert missing.status_code == 404
    key = make_key()
    denied = gateway_http.post(
        "/model/new",
        json={"model_name": "x", "litellm_params": {"model": "openai/x"}},
        headers={"authorization": f"Bearer {key}"},
    )
    assert denied.status_code == 403


def test_unknown_management_paths_answer_json_404(gateway_http: Any) -> None:
    for path in ("/key/nope", "/team/new/extra", "/organization", "/spend/nope", "/nothing"):
        response = gateway_http.get(path)
        assert response.status_code == 404, path
        assert response.headers["content-type"].startswith("application/json"), path
        assert set(response.json()["error"]) == {"message", "type", "param", "code"}


def test_wrong_method_is_a_json_405(gateway_http: Any) -> None:
    response = gateway_http.get("/key/generate")
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"
    assert "POST" in response.headers["allow"]
