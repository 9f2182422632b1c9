"""Admins manage deployments and keys in the Django admin; changes serve without a restart and
credentials never come back out of it."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from apps.core.secrets import resolve
from apps.keys.models import VirtualKey
from apps.routing.models import Deployment, ModelGroup

SECRET = "sk-admin-typed-upstream-key-987654"


@pytest.fixture
def admin_client(client, db):
    user = get_user_model().objects.create_superuser("root", "root@example.com", "pw-123456")
    client.force_login(user)
    return client


def _deployment_form(group: ModelGroup, **overrides: str) -> dict[str, str]:
    data = {
        "group": str(group.pk),
        "provider": "openai",
        "model": "gpt-4o-mini",
        "enabled": "on",
        "api_base": "",
        "api_version": "",
        "headers": "{}",
        "extra_params": "{}",
        "weight": "1",
        "order": "",
        "rpm": "",
        "tpm": "",
        "timeout": "",
        "stream_timeout": "",
        "input_cost_per_token": "",
        "output_cost_per_token": "",
        "cache_read_input_token_cost": "",
        "model_info": "{}",
        "new_api_key": SECRET,
    }
    data.update(overrides)
    return data


def test_added_deployment_serves_without_restart_and_key_is_encrypted(
    admin_client, gateway_server, fake_openai, openai_client
):
    group = ModelGroup.objects.create(name="from-admin")
    response = admin_client.post(
        "/admin/routing/deployment/add/",
        _deployment_form(group, api_base=fake_openai.url + "/v1"),
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    dep = Deployment.objects.get()
    assert SECRET not in dep.api_key and resolve(dep.api_key) == SECRET
    reply = openai_client().chat.completions.create(
        model="from-admin", messages=[{"role": "user", "content": "admin made me"}]
    )
    assert reply.choices[0].message.content == "admin made me"
    assert fake_openai.requests[-1].headers["Authorization"] == f"Bearer {SECRET}"
    # The change page never shows the stored key, and saving without a new one keeps it.
    page = admin_client.get(f"/admin/routing/deployment/{dep.pk}/change/").content.decode()
    assert SECRET not in page and dep.api_key not in page
    form = _deployment_form(group, api_base=fake_openai.url + "/v1", new_api_key="", rpm="10")
    assert admin_client.post(f"/admin/routing/deployment/{dep.pk}/change/", form).status_code == 302
    dep.refresh_from_db()
    assert dep.rpm == 10 and resolve(dep.api_key) == SECRET


def test_unknown_provider_is_refused(admin_client):
    group = ModelGroup.objects.create(name="g")
    response = admin_client.post(
        "/admin/routing/deployment/add/", _deployment_form(group, provider="nope")
    )
    assert response.status_code == 200
    assert not Deployment.objects.exists()


def test_issued_key_is_shown_once_and_works(
    admin_client, gateway_server, openai_client, make_deployment
):
    make_deployment("m", "mock", "echo")
    response = admin_client.post(
        "/admin/keys/virtualkey/add/",
        {"key_alias": "ci", "allowed_models": '["m"]', "metadata": "{}", "budget_duration": ""},
        follow=True,
    )
    assert response.status_code == 200
    assert not [m for m in response.context["messages"] if "sk-" in str(m)]
    raw = response.content.decode().split('<code id="new-key-1">', 1)[1].split("</code>", 1)[0]
    key = VirtualKey.objects.get()
    assert key.key_alias == "ci" and raw not in key.digest
    assert raw not in admin_client.get(f"/admin/keys/virtualkey/{key.pk}/change/").content.decode()
    reply = openai_client(raw).chat.completions.create(
        model="m", messages=[{"role": "user", "content": "hi"}]
    )
    assert reply.choices[0].message.content == "hi"
