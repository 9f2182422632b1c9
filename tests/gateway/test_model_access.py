"""Which models a key may call: key ∩ team ∩ organization, with model-group names, access
groups, wildcards, ``[]`` (what the team allows) and ``["*"]`` (anything routable)."""

from __future__ import annotations

import openai
import pytest

from tests.gateway.helpers import E2E, HELLO

pytestmark = E2E


@pytest.fixture
def groups(openai_upstream):
    openai_upstream("openai/gpt-4o", "gpt-4o")
    openai_upstream("openai/gpt-4o-mini", "gpt-4o-mini")
    openai_upstream("claude", "gpt-4o", model_info={"access_groups": ["beta"]})
    openai_upstream("other", "gpt-4o")


def _allowed(client, model: str) -> bool:
    try:
        client.chat.completions.create(model=model, messages=HELLO)
    except openai.PermissionDeniedError:
        return False
    return True


def _team(models, org_models=None):
    from apps.teams.models import Organization, Team

    org = Organization.objects.create(allowed_models=org_models) if org_models else None
    return Team.objects.create(team_alias="t", allowed_models=models, organization=org)


MODELS = ["openai/gpt-4o", "openai/gpt-4o-mini", "claude", "other"]


def _matrix(client) -> list[str]:
    return [m for m in MODELS if _allowed(client, m)]


def test_wildcard(gateway_server, groups, openai_client, make_key):
    client = openai_client(make_key(models=["openai/*"]))
    assert _matrix(client) == ["openai/gpt-4o", "openai/gpt-4o-mini"]


def test_access_group(gateway_server, groups, openai_client, make_key):
    client = openai_client(make_key(models=["beta", "other"]))
    assert _matrix(client) == ["claude", "other"]
    listed = {m.id for m in client.models.list()}
    assert listed == {"claude", "other"}


def test_empty_list_means_what_the_team_allows(gateway_server, groups, openai_client, make_key):
    client = openai_client(make_key(models=[], team=_team(["other", "beta"])))
    assert _matrix(client) == ["claude", "other"]


def test_star_means_anything_the_team_allows(gateway_server, groups, openai_client, make_key):
    assert _matrix(openai_client(make_key(models=["*"], team=_team(["other"])))) == ["other"]
    assert _matrix(openai_client(make_key(models=["*"]))) == MODELS


def test_key_team_and_organization_intersect(gateway_server, groups, openai_client, make_key):
    team = _team(["openai/*", "other"], org_models=["openai/gpt-4o", "other", "claude"])
    client = openai_client(
        make_key(models=["openai/gpt-4o", "openai/gpt-4o-mini", "claude"], team=team)
    )
    assert _matrix(client) == ["openai/gpt-4o"]
