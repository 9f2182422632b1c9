"""/user/* routes: internal users, their teams, budgets and keys."""

from __future__ import annotations

import pytest

from apps.keys import hashing
from apps.keys.models import VirtualKey
from apps.teams.models import GatewayUser, TeamMembership
from tests.personas import World, build_world, error_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def world() -> World:
    return build_world()


def test_new_user_returns_a_usable_key_and_the_user_id(world: World) -> None:
    body = {
        "user_email": "dana@example.com",
        "user_role": "internal_user",
        "max_budget": 3,
        "teams": ["team-a", {"team_id": "team-b", "max_budget_in_team": 1, "user_role": "admin"}],
        "models": ["gpt-4o"],
    }
    response = world.call("master", "POST", "/user/new", body)
    assert response.status_code == 200, response.json()
    data = response.json()
    user = GatewayUser.objects.get(user_id=data["user_id"])
    key = VirtualKey.objects.get(digest=hashing.digest(data["key"]))
    assert key.user == user and key.allowed_models == ["gpt-4o"]
    roles = dict(TeamMembership.objects.filter(user=user).values_list("team__team_id", "role"))
    assert roles == {"team-a": "member", "team-b": "admin"}
    assert TeamMembership.objects.get(user=user, team__team_id="team-b").max_budget == 1
    world.keys["dana"] = data["key"]
    assert world.call("dana", "GET", "/user/info").json()["user_id"] == data["user_id"]


def test_new_user_without_a_key(world: World) -> None:
    body = {"user_id": "no-key", "auto_create_key": False}
    response = world.call("master", "POST", "/user/new", body)
    assert response.json()["key"] is None
    assert not VirtualKey.objects.filter(user__user_id="no-key").exists()
    assert world.call("master", "POST", "/user/new", {"user_id": "no-key"}).status_code == 409


@pytest.mark.parametrize(
    ("who", "body", "status"),
    [
        ("org_admin", {"organizations": ["org-a"]}, 200),
        ("org_admin", {"organizations": ["org-b"]}, 403),
        ("org_admin", {}, 403),
        ("org_admin", {"organizations": ["org-a"], "user_role": "proxy_admin"}, 403),
        ("team_admin", {"teams": ["team-a"]}, 403),
        ("member", {}, 403),
        ("proxy_viewer", {}, 403),
        ("nobody", {}, 401),
    ],
)
def test_who_may_create_users(world: World, who: str, body: dict, status: int) -> None:
    before = GatewayUser.objects.count()
    response = world.call(who, "POST", "/user/new", body)
    assert response.status_code == status
    assert GatewayUser.objects.count() == before + (status == 200)


@pytest.mark.parametrize(
    ("who", "target", "status"),
    [
        ("master", "member", 200),
        ("proxy_viewer", "member", 200),
        ("org_admin", "member", 200),
        ("team_admin", "member", 200),
        ("member", "member", 200),
        ("member", "team_admin", 403),
        ("outsider", "member", 403),
        ("team_admin", "outsider", 403),
        ("master", "ghost", 404),
    ],
)
def test_user_info_matrix(world: World, who: str, target: str, status: int) -> None:
    response = world.call(who, "GET", "/user/info", user_id=target)
    assert response.status_code == status
    if status == 200:
        assert response.json()["user_info"]["user_email"] == f"{target}@example.com"
    else:
        error_of(response)


def test_user_info_lists_teams_with_membership_and_budgets(world: World) -> None:
    TeamMembership.objects.filter(user__user_id="member").update(max_budget=4)
    body = world.call("member", "GET", "/user/info").json()
    assert [t["team_id"] for t in body["teams"]] == ["team-a"]
    assert body["teams"][0]["membership"]["role"] == "user"
    assert body["teams"][0]["membership"]["max_budget"] == 4
    assert [k["key_alias"] for k in body["keys"]] == ["member-key"]


def test_user_list_is_scoped_and_paged(world: World) -> None:
    everyone = world.call("master", "GET", "/user/list", page_size=3)
    assert everyone.json()["total"] == 7 and len(everyone.json()["users"]) == 3
    mine = world.call("team_admin", "GET", "/user/list").json()
    assert {u["user_id"] for u in mine["users"]} == {"team_admin", "member", "viewer"}
    assert world.call("member", "GET", "/user/list").json()["total"] == 1


def test_user_update(world: World) -> None:
    ok = world.call("master", "POST", "/user/update", {"user_id": "member", "user_alias": "M"})
    assert ok.json()["user_alias"] == "M"
    body = {"user_id": "member", "user_role": "proxy_admin"}
    assert world.call("org_admin", "POST", "/user/update", body).status_code == 403
    body = {"user_id": "member", "user_alias": "x"}
    assert world.call("outsider", "POST", "/user/update", body).status_code == 403
    assert GatewayUser.objects.get(user_id="member").user_role == "internal_user"
    assert world.call("master", "POST", "/user/update", {"user_alias": "x"}).status_code == 400


def test_user_delete_removes_their_keys(world: World) -> None:
    assert (
        world.call("org_admin", "POST", "/user/delete", {"user_ids": ["member"]}).status_code == 403
    )
    response = world.call("master", "DELETE", "/user/delete", {"user_ids": ["member"]})
    assert response.status_code == 200
    assert not GatewayUser.objects.filter(user_id="member").exists()
    assert not VirtualKey.objects.filter(key_alias="member-key").exists()
