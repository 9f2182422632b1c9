"""/organization/* routes."""

from __future__ import annotations

import pytest

from apps.teams.models import Organization, OrganizationMembership
from tests.personas import World, build_world, error_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def world() -> World:
    return build_world()


def test_new_organization_and_repeated_aliases(world: World) -> None:
    first = world.call(
        "master",
        "POST",
        "/organization/new",
        {"organization_alias": "acme", "max_budget": 1e-7, "models": ["gpt-4o"]},
    )
    second = world.call("master", "POST", "/organization/new", {"organization_alias": "acme"})
    assert first.status_code == second.status_code == 200
    assert first.json()["organization_id"] != second.json()["organization_id"]
    assert first.json()["max_budget"] == 1e-7 and first.json()["models"] == ["gpt-4o"]
    assert Organization.objects.filter(organization_alias="acme").count() == 2
    taken = world.call("master", "POST", "/organization/new", {"organization_id": "org-a"})
    assert taken.status_code == 409


@pytest.mark.parametrize("who", ["org_admin", "team_admin", "member", "proxy_viewer", "outsider"])
def test_only_proxy_admins_create_and_delete_organizations(world: World, who: str) -> None:
    new = world.call(who, "POST", "/organization/new", {"organization_alias": "x"})
    assert new.status_code == 403
    response = world.call(who, "DELETE", "/organization/delete", {"organization_ids": ["org-a"]})
    assert response.status_code == 403
    assert Organization.objects.filter(organization_id="org-a").exists()


def test_delete_refuses_an_organization_that_still_has_teams(world: World) -> None:
    body = {"organization_ids": ["org-a"]}
    response = world.call("master", "DELETE", "/organization/delete", body)
    assert response.status_code == 409 and error_of(response)["code"] == "in_use"
    empty = world.call("master", "POST", "/organization/new", {"organization_alias": "e"}).json()
    body = {"organization_ids": [empty["organization_id"]]}
    assert world.call("master", "DELETE", "/organization/delete", body).status_code == 200


@pytest.mark.parametrize(
    ("who", "org", "status"),
    [
        ("master", "org-a", 200),
        ("proxy_viewer", "org-a", 200),
        ("org_admin", "org-a", 200),
        ("org_admin", "org-b", 403),
        ("team_admin", "org-a", 403),
        ("outsider", "org-a", 403),
        ("master", "nope", 404),
        ("nobody", "org-a", 401),
    ],
)
def test_organization_info_matrix(world: World, who: str, org: str, status: int) -> None:
    response = world.call(who, "GET", "/organization/info", organization_id=org)
    assert response.status_code == status
    if status == 200:
        assert response.json()["organization_id"] == org
        assert [t["team_id"] for t in response.json()["teams"]] == [f"team-{org[-1]}"]
    else:
        error_of(response)


def test_organization_list_is_scoped(world: World) -> None:
    def ids(who: str) -> list[str]:
        return sorted(
            o["organization_id"] for o in world.call(who, "GET", "/organization/list").json()
        )

    assert ids("master") == ["org-a", "org-b"]
    assert ids("org_admin") == ["org-a"]
    assert ids("member") == []


def test_update_by_org_admin_of_their_own_only(world: World) -> None:
    body = {"organization_id": "org-a", "organization_alias": "A2"}
    ok = world.call("org_admin", "PATCH", "/organization/update", body)
    assert ok.status_code == 200 and ok.json()["organization_alias"] == "A2"
    body = {"organization_id": "org-b", "organization_alias": "x"}
    assert world.call("org_admin", "PATCH", "/organization/update", body).status_code == 403
    assert Organization.objects.get(organization_id="org-b").organization_alias == "B"
    body = {"organization_id": "org-a", "max_budget": 1000}
    raised = world.call("org_admin", "PATCH", "/organization/update", body)
    assert raised.status_code == 403 and error_of(raised)["param"] == "max_budget"
    assert Organization.objects.get(organization_id="org-a").max_budget is None


def test_member_add(world: World) -> None:
    member = [{"user_id": "member", "role": "internal_user"}]
    body = {"organization_id": "org-a", "member": member}
    response = world.call("org_admin", "POST", "/organization/member_add", body)
    assert response.status_code == 200, response.json()
    assert OrganizationMembership.objects.filter(
        organization__organization_id="org-a", user__user_id="member"
    ).exists()
    body = {"organization_id": "org-a", "member": {"user_id": "member", "role": "org_admin"}}
    assert world.call("org_admin", "POST", "/organization/member_add", body).status_code == 403
    body = {"organization_id": "org-a", "member": {"user_id": "m", "role": "boss"}}
    wrong = world.call("master", "POST", "/organization/member_add", body)
    assert wrong.status_code == 400 and "role" in error_of(wrong)["param"]


def test_an_org_admin_cannot_pull_in_another_tenants_user(world: World) -> None:
    body = {"organization_id": "org-a", "member": {"user_id": "outsider"}}
    response = world.call("org_admin", "POST", "/organization/member_add", body)
    assert response.status_code == 403
    assert not OrganizationMembership.objects.filter(user__user_id="outsider").exists()
