"""/model/new|update|delete: validation, credentials never returned, proxy admins only."""

from __future__ import annotations

import pytest

from apps.core.models import AuditLog
from apps.core.secrets import resolve
from apps.routing.models import Deployment
from tests.personas import World, build_world, error_of

pytestmark = pytest.mark.django_db
SECRET = "sk-upstream-secret-for-model-tests"


@pytest.fixture
def world() -> World:
    return build_world()


def _new(world: World, who: str = "master", **params: object) -> object:
    body = {
        "model_name": "m",
        "litellm_params": {"model": "openai/gpt-4o", "api_key": SECRET, **params},
        "model_info": {"id": "dep-1", "access_groups": ["beta"]},
    }
    return world.call(who, "POST", "/model/new", body)


def test_new_model_keeps_the_key_encrypted_and_never_returns_it(world: World) -> None:
    response = _new(world, region_name="eu", rpm=10)
    assert response.status_code == 200, response.json()
    assert SECRET not in response.content.decode()
    dep = Deployment.objects.get(model_id="dep-1")
    assert resolve(dep.api_key) == SECRET and dep.region_name == "eu" and dep.rpm == 10
    assert dep.model_info == {"access_groups": ["beta"]}
    entry = AuditLog.objects.get(object_type="deployment", action="created")
    assert SECRET not in str(entry.after) and entry.object_id == "dep-1"
    assert _new(world).status_code == 400  # the same id again


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"model": "unknown-provider/x"}, "unknown provider"),
        ({"api_base": "http://x/" + "a" * 600}, "api_base"),
        ({"rpm": "lots"}, "lots"),
    ],
)
def test_bad_litellm_params_are_400(world: World, params: dict, fragment: str) -> None:
    response = _new(world, **params)
    assert response.status_code == 400
    error = error_of(response)
    assert error["param"] == "litellm_params" and fragment in error["message"]
    assert not Deployment.objects.exists()


def test_update_merges_and_keeps_credentials(world: World) -> None:
    _new(world, api_base="http://upstream.example/v1")
    body = {"model_info": {"id": "dep-1"}, "model_name": "m2", "litellm_params": {"tpm": 5}}
    response = world.call("master", "POST", "/model/update", body)
    assert response.status_code == 200, response.json()
    dep = Deployment.objects.get(model_id="dep-1")
    assert (dep.group.name, dep.tpm, dep.api_base) == ("m2", 5, "http://upstream.example/v1")
    assert resolve(dep.api_key) == SECRET
    missing = world.call("master", "POST", "/model/update", {"model_info": {"id": "nope"}})
    assert missing.status_code == 404 and error_of(missing)["param"] == "model_info.id"
    assert world.call("master", "POST", "/model/update", {"model_info": {}}).status_code == 400


@pytest.mark.parametrize("who", ["proxy_viewer", "org_admin", "team_admin", "member", "outsider"])
def test_only_proxy_admins_manage_models(world: World, who: str) -> None:
    assert _new(world, who).status_code == 403
    _new(world)
    denied = world.call(who, "POST", "/model/delete", {"id": "dep-1"})
    assert denied.status_code == 403 and Deployment.objects.filter(model_id="dep-1").exists()
    assert world.call("nobody", "POST", "/model/delete", {"id": "dep-1"}).status_code == 401
