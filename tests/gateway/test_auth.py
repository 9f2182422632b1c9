"""Who may call: master key, virtual keys (allowed models, expiry, blocking) and key changes
reaching the running gateway without a restart."""

from __future__ import annotations

from datetime import timedelta

import openai
import pytest
from django.db.models import F
from django.utils import timezone

from apps.core.models import ChangeMarker
from apps.keys.models import VirtualKey
from apps.keys.services import key_block, key_regenerate
from apps.teams.models import Organization, Team
from tests.conftest import MASTER_KEY
from tests.gateway.helpers import CHAT, E2E, HELLO, openai_error, usage_rows, wait_until

pytestmark = E2E


@pytest.fixture
def gpt(openai_upstream):
    return openai_upstream("gpt", "gpt-4o-mini")


def _chat(client):
    return client.chat.completions.create(model="gpt", messages=HELLO)


def test_master_key_may_call(gpt, openai_client):
    assert _chat(openai_client(MASTER_KEY)).choices[0].message.content


def test_virtual_key_may_call_and_is_logged(gateway_server, gpt, openai_client, make_key):
    team = Team.objects.create(team_alias="research")
    key = make_key(team=team, key_alias="ci")
    _chat(openai_client(key))
    [row] = usage_rows(gateway_server, 1)
    stored = VirtualKey.objects.get()
    assert (row.key_id, row.key_alias, row.team_id) == (stored.pk, "ci", team.pk)


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, "missing_api_key"),
        ({"authorization": "Bearer"}, "invalid_api_key"),
        ({"authorization": "Bearer sk-not-a-real-key"}, "invalid_api_key"),
        ({"authorization": "Basic dXNlcjpwYXNz"}, "invalid_api_key"),
    ],
)
def test_missing_or_bad_key_is_401(gateway_server, gateway_http, gpt, fake_openai, headers, code):
    gateway_http.headers.pop("authorization")
    response = gateway_http.post(CHAT, json={"model": "gpt", "messages": HELLO}, headers=headers)
    assert response.status_code == 401
    assert openai_error(response)["code"] == code
    assert fake_openai.requests == []
    # Refused calls are logged too (one row per call), charged to nobody.
    [row] = usage_rows(gateway_server, 1)
    assert (row.status_code, row.key_id, row.cost) == (401, None, 0)


def test_bad_key_raises_the_sdk_authentication_error(gpt, openai_client):
    with pytest.raises(openai.AuthenticationError) as info:
        _chat(openai_client("sk-wrong"))
    assert info.value.status_code == 401


@pytest.mark.parametrize("header", ["api-key", "x-api-key"])
def test_azure_and_anthropic_style_key_headers(gateway_http, gpt, make_key, header):
    key = make_key()
    gateway_http.headers.pop("authorization")
    response = gateway_http.post(
        CHAT, json={"model": "gpt", "messages": HELLO}, headers={header: key}
    )
    assert response.status_code == 200


def test_expired_key_is_401(gpt, openai_client, make_key):
    key = make_key(expires_at=timezone.now() - timedelta(seconds=1))
    with pytest.raises(openai.AuthenticationError) as info:
        _chat(openai_client(key))
    assert info.value.code == "expired_api_key"


def test_key_expiring_later_still_works(gpt, openai_client, make_key):
    key = make_key(expires_at=timezone.now() + timedelta(hours=1))
    assert _chat(openai_client(key)).choices


def test_blocked_key_is_401(gpt, openai_client, make_key):
    key = make_key()
    key_block(key=VirtualKey.objects.get())
    with pytest.raises(openai.AuthenticationError):
        _chat(openai_client(key))


def test_key_of_a_blocked_team_is_401(gpt, openai_client, make_key):
    team = Team.objects.create(team_alias="t", blocked=True)
    with pytest.raises(openai.AuthenticationError):
        _chat(openai_client(make_key(team=team)))


def test_model_not_allowed_is_403(gateway_server, gpt, openai_upstream, openai_client, make_key):
    openai_upstream("other", "gpt-4o")
    key = make_key(models=["other"])
    with pytest.raises(openai.PermissionDeniedError) as info:
        _chat(openai_client(key))
    assert info.value.status_code == 403
    assert info.value.code == "model_not_allowed"
    assert info.value.param == "model"
    assert openai_client(key).chat.completions.create(model="other", messages=HELLO).choices
    rows = usage_rows(gateway_server, 2)
    assert [r.status_code for r in rows] == [403, 200]


def test_key_may_not_probe_unknown_models(gpt, openai_client, make_key):
    """A restricted key learns nothing about models outside its list: 403, not 404."""
    key = make_key(models=["gpt"])
    with pytest.raises(openai.PermissionDeniedError):
        openai_client(key).chat.completions.create(model="secret-model", messages=HELLO)


def test_team_and_organization_model_lists_narrow_the_key(
    gpt, openai_upstream, openai_client, make_key
):
    openai_upstream("other", "gpt-4o")
    org = Organization.objects.create(organization_alias="acme", allowed_models=["gpt", "other"])
    team = Team.objects.create(team_alias="t", organization=org, allowed_models=["other"])
    key = make_key(team=team)
    with pytest.raises(openai.PermissionDeniedError):
        _chat(openai_client(key))
    assert openai_client(key).chat.completions.create(model="other", messages=HELLO).choices


def test_blocking_a_key_takes_effect_on_the_next_request(gpt, openai_client, make_key):
    key = make_key()
    client = openai_client(key)
    _chat(client)  # the key is now cached by the gateway
    key_block(key=VirtualKey.objects.get())
    with pytest.raises(openai.AuthenticationError):
        _chat(client)
    key_block(key=VirtualKey.objects.get(), blocked=False)
    assert _chat(client).choices


def test_changing_allowed_models_takes_effect_on_the_next_request(gpt, openai_client, make_key):
    key = make_key()
    client = openai_client(key)
    _chat(client)
    stored = VirtualKey.objects.get()
    stored.allowed_models = ["something-else"]
    stored.save()
    with pytest.raises(openai.PermissionDeniedError):
        _chat(client)


def test_blocking_a_team_takes_effect_on_the_next_request(gpt, openai_client, make_key):
    team = Team.objects.create(team_alias="t")
    client = openai_client(make_key(team=team))
    _chat(client)
    team.blocked = True
    team.save()
    with pytest.raises(openai.AuthenticationError):
        _chat(client)


def test_regenerated_key_replaces_the_old_one(gpt, openai_client, make_key):
    old = make_key()
    _chat(openai_client(old))
    _, new = key_regenerate(key=VirtualKey.objects.get())
    with pytest.raises(openai.AuthenticationError):
        _chat(openai_client(old))
    assert _chat(openai_client(new)).choices


def test_deleted_key_stops_working(gpt, openai_client, make_key):
    key = make_key()
    _chat(openai_client(key))
    VirtualKey.objects.get().delete()
    with pytest.raises(openai.AuthenticationError):
        _chat(openai_client(key))


def test_change_made_by_another_process_arrives_through_the_marker_poll(
    gpt, openai_client, make_key
):
    """Another process's change reaches this one only through the change marker (no signal
    runs here): the gateway's poll notices the bumped revision and drops its cached keys."""
    from apps.core import changes

    key = make_key()
    client = openai_client(key)
    _chat(client)
    wait_until(lambda: changes.TOPIC_KEYS in changes._seen, what="first marker poll")
    VirtualKey.objects.update(blocked=True)  # no signal: as if done elsewhere
    assert _chat(client).choices  # still cached
    ChangeMarker.objects.filter(topic=changes.TOPIC_KEYS).update(revision=F("revision") + 1)

    def refused() -> bool:
        try:
            _chat(client)
        except openai.AuthenticationError:
            return True
        return False

    wait_until(refused, timeout=5, what="the key to be refused")
