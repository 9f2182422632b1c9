"""GET /v1/models (what the calling key may use) and /model/info (groups and deployments,
credentials never included)."""

from __future__ import annotations

from decimal import Decimal

import openai
import orjson
import pytest

from tests.conftest import UPSTREAM_KEY
from tests.gateway.helpers import E2E, openai_error

pytestmark = E2E


@pytest.fixture
def three_groups(openai_upstream, make_deployment):
    openai_upstream("gpt", "gpt-4o-mini")
    openai_upstream("gpt", "gpt-4o-mini-2024-07-18")
    openai_upstream("embed", "text-embedding-3-small")
    make_deployment("echo", "mock", "echo-1")


def test_master_key_lists_every_group(three_groups, openai_client):
    models = openai_client().models.list()
    assert [m.id for m in models.data] == ["echo", "embed", "gpt"]
    assert {m.object for m in models.data} == {"model"}
    owners = {m.id: m.owned_by for m in models.data}
    assert owners == {"echo": "mock", "embed": "openai", "gpt": "openai"}


def test_virtual_key_lists_only_its_allowed_groups(three_groups, openai_client, make_key):
    key = make_key(models=["gpt", "echo", "not-served"])
    assert [m.id for m in openai_client(key).models.list().data] == ["echo", "gpt"]


def test_key_without_model_list_sees_everything(three_groups, openai_client, make_key):
    assert len(openai_client(make_key()).models.list().data) == 3


@pytest.mark.parametrize("path", ["/v1/models", "/models"])
def test_models_path_with_and_without_v1(three_groups, gateway_http, path):
    response = gateway_http.get(path)
    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "list"
    assert len(body["data"]) == 3


def test_disabled_deployment_and_group_are_not_listed(three_groups, openai_client):
    from apps.routing.models import Deployment, ModelGroup

    group = ModelGroup.objects.get(name="embed")
    group.enabled = False
    group.save()
    for dep in Deployment.objects.filter(group__name="echo"):
        dep.enabled = False
        dep.save()
    assert [m.id for m in openai_client().models.list().data] == ["gpt"]


def test_models_needs_a_key(three_groups, gateway_http):
    response = gateway_http.get("/v1/models", headers={"authorization": ""})
    assert response.status_code == 401
    assert openai_error(response)["code"] == "missing_api_key"
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(
            base_url=gateway_http.base_url.join("/v1"), api_key="sk-wrong", max_retries=0
        ).models.list()


@pytest.mark.parametrize("path", ["/model/info", "/v1/model/info"])
def test_model_info_lists_deployments_without_credentials(
    gateway_http, openai_upstream, make_deployment, path
):
    dep = openai_upstream(
        "gpt",
        "gpt-4o-mini",
        rpm=100,
        tpm=5000,
        timeout=30,
        input_cost_per_token=Decimal("0.000001"),
        extra_params={"organization": "org-1", "api_token": "tok-visible-nowhere"},
        secret_params={"client_secret": "cs-visible-nowhere"},
        headers={"x-api-key": "hdr-visible-nowhere"},
    )
    make_deployment("echo", "mock", "echo-1")
    response = gateway_http.get(path)
    assert response.status_code == 200
    text = response.text
    for secret in (UPSTREAM_KEY, "tok-visible-nowhere", "cs-visible-nowhere", "hdr-visible"):
        assert secret not in text
    data = response.json()["data"]
    assert [d["model_name"] for d in data] == ["echo", "gpt"]
    gpt = data[1]
    params = gpt["litellm_params"]
    assert params["model"] == "openai/gpt-4o-mini"
    assert params["api_base"].endswith("/v1")
    assert (params["rpm"], params["tpm"], params["timeout"]) == (100, 5000, 30)
    assert params["organization"] == "org-1"
    assert not {"api_key", "api_token", "client_secret", "headers"} & set(params)
    assert gpt["model_info"]["id"] == dep.model_id
    assert gpt["model_info"]["input_cost_per_token"] == pytest.approx(1e-6)


def test_model_info_filters_by_deployment_id(gateway_http, openai_upstream):
    openai_upstream("gpt", "gpt-4o-mini")
    second = openai_upstream("gpt", "gpt-4o")
    response = gateway_http.get("/model/info", params={"litellm_model_id": second.model_id})
    [only] = response.json()["data"]
    assert only["model_info"]["id"] == second.model_id


def test_model_info_respects_the_key_allowed_models(gateway_http, openai_upstream, make_key):
    openai_upstream("gpt", "gpt-4o-mini")
    openai_upstream("other", "gpt-4o")
    key = make_key(models=["other"])
    response = gateway_http.get("/v1/model/info", headers={"authorization": f"Bearer {key}"})
    assert [d["model_name"] for d in response.json()["data"]] == ["other"]


def test_model_info_needs_a_key(gateway_http, openai_upstream):
    openai_upstream("gpt", "gpt-4o-mini")
    response = gateway_http.get("/model/info", headers={"authorization": "Bearer sk-nope"})
    assert response.status_code == 401
    assert orjson.loads(response.content)["error"]["type"] == "invalid_request_error"


def test_post_on_a_get_endpoint_is_405_in_openai_shape(gateway_http):
    response = gateway_http.post("/v1/models", json={})
    assert response.status_code == 405
    assert openai_error(response)["code"] == "method_not_allowed"
    assert "GET" in response.headers["allow"]
