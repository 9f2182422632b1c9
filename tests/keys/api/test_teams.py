"""/team/* routes: team admins manage members and labels of their team; budgets, models and
blocking belong to organization and proxy admins; nobody touches another tenant's team."""

from __future__ import annotations

from decimal import Decimal

import pytest

from apps.core.models import AuditLog
from apps.keys.models import VirtualKey
from apps.teams.models import Team, TeamMembership
from tests.personas import World, build_world, error_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def world() -> World:
    return build_world()


def test_new_team_with_budget_models_and_members(world: World) -> None:
    response = world.call(
        "master",
        "POST",
        "/team/new",
        {
            "team_alias": "platform",
            "organization_id": "org-a",
            "models": ["gpt-4o", "claude"],
            "max_budget": 10,
            "budget_duration": "1mo",
            "rpm_limit": 100,
            "members_with_roles": [
                {"user_id": "member", "role": "admin"},
                {"user_email": "new@example.com", "role": "user"},
            ],
        },
    )
    assert response.status_code == 200, response.json()
    body = response.json()
    team = Team.objects.get(team_id=body["team_id"])
    assert team.max_budget == Decimal(10) and team.allowed_models == ["gpt-4o", "claude"]
    assert team.budget_reset_at is not None
    roles = dict(TeamMembership.objects.filter(team=team).values_list("user__user_email", "role"))
    assert roles == {"member@example.com": "admin", "new@example.com": "member"}
    assert {m["role"] for m in body["members_with_roles"]} == {"admin", "user"}


def test_team_aliases_repeat_and_ids_are_unique(world: World) -> None:
    ids = {
        world.call("master", "POST", "/team/new", {"team_alias": "x"}).json()["team_id"]
        for _ in range(3)
    }
    assert len(ids) == 3
    taken = world.call("master", "POST", "/team/new", {"team_id": "team-a"})
    assert taken.status_code == 409 and error_of(taken)["param"] == "team_id"


@pytest.mark.parametrize(
    ("who", "org", "status"),
    [
        ("proxy_admin", None, 200),
        ("org_admin", "org-a", 200),
        ("org_admin", "org-b", 403),
        ("org_admin", None, 403),
        ("team_admin", "org-a", 403),
        ("member", None, 403),
        ("proxy_viewer", None, 403),
        ("nobody", None, 401),
    ],
)
def test_who_may_create_teams(world: World, who: str, org: str | None, status: int) -> None:
    before = Team.objects.count()
    body = {"team_alias": "t", **({"organization_id": org} if org else {})}
    response = world.call(who, "POST", "/team/new", body)
    assert response.status_code == status
    assert Team.objects.count() == before + (status == 200)


@pytest.mark.parametrize(
    ("who", "team", "status"),
    [
        ("master", "team-a", 200),
        ("proxy_viewer", "team-a", 200),
        ("org_admin", "team-a", 200),
        ("team_admin", "team-a", 200),
        ("member", "team-a", 200),
        ("viewer", "team-a", 200),
        ("outsider", "team-a", 403),
        ("org_admin", "team-b", 403),
        ("nobody", "team-a", 401),
        ("master", "missing", 404),
    ],
)
def test_team_info_permission_matrix(world: World, who: str, team: str, status: int) -> None:
    response = world.call(who, "GET", "/team/info", team_id=team)
    assert response.status_code == status
    if status == 200:
        assert response.json()["team_info"]["team_id"] == team
    else:
        error_of(response)


def test_team_info_lists_only_keys_the_caller_may_see(world: World) -> None:
    as_member = world.call("member", "GET", "/team/info", team_id="team-a").json()
    assert {k["key_alias"] for k in as_member["keys"]} == {"member-key"}
    as_admin = world.call("team_admin", "GET", "/team/info", team_id="team-a").json()
    assert {k["key_alias"] for k in as_admin["keys"]} == {
        "team_admin-key",
        "member-key",
        "viewer-key",
    }


def test_team_list_is_scoped(world: World) -> None:
    def ids(who: str) -> set[str]:
        return {t["team_id"] for t in world.call(who, "GET", "/team/list").json()}

    assert ids("master") == {"team-a", "team-b"}
    assert ids("org_admin") == {"team-a"}
    assert ids("member") == {"team-a"}
    assert ids("outsider") == {"team-b"}
    assert ids("proxy_admin") == {"team-a", "team-b"}


@pytest.mark.parametrize(
    ("who", "body", "status"),
    [
        ("team_admin", {"team_alias": "renamed"}, 200),
        ("team_admin", {"max_budget": 1000}, 403),
        ("team_admin", {"models": ["*"]}, 403),
        ("org_admin", {"max_budget": 1000, "models": ["gpt-4o"]}, 200),
        ("member", {"team_alias": "renamed"}, 403),
        ("viewer", {"team_alias": "renamed"}, 403),
        ("outsider", {"team_alias": "renamed"}, 403),
        ("org_admin", {"organization_id": "org-b"}, 403),
        ("master", {"organization_id": "org-b"}, 200),
    ],
)
def test_team_update_permission_matrix(world: World, who: str, body: dict, status: int) -> None:
    before = Team.objects.get(team_id="team-a")
    response = world.call(who, "POST", "/team/update", {"team_id": "team-a", **body})
    assert response.status_code == status, response.json()
    after = Team.objects.get(team_id="team-a")
    if status != 200:
        assert (after.team_alias, after.max_budget, after.organization_id) == (
            before.team_alias,
            before.max_budget,
            before.organization_id,
        )


def test_block_and_unblock_a_team(world: World) -> None:
    assert world.call("team_admin", "POST", "/team/block", {"team_id": "team-a"}).status_code == 403
    assert world.call("outsider", "POST", "/team/block", {"team_id": "team-a"}).status_code == 403
    response = world.call("org_admin", "POST", "/team/block", {"team_id": "team-a"})
    assert response.status_code == 200 and response.json()["blocked"] is True
    # Keys of a blocked team stop authenticating.
    assert world.call("member", "GET", "/key/info").status_code == 401
    world.call("master", "POST", "/team/unblock", {"team_id": "team-a"})
    assert world.call("member", "GET", "/key/info").status_code == 200


def test_member_add_and_delete(world: World) -> None:
    added = world.call(
        "team_admin",
        "POST",
        "/team/member_add",
        {
            "team_id": "team-a",
            "member": {"user_id": "fresh", "role": "user"},
            "max_budget_in_team": 2,
        },
    )
    assert added.status_code == 200, added.json()
    membership = TeamMembership.objects.get(team__team_id="team-a", user__user_id="fresh")
    assert membership.role == "member" and membership.max_budget == 2
    assert (
        world.call(
            "outsider",
            "POST",
            "/team/member_add",
            {"team_id": "team-a", "member": {"user_id": "x"}},
        ).status_code
        == 403
    )
    assert (
        world.call(
            "member", "POST", "/team/member_add", {"team_id": "team-a", "member": {"user_id": "x"}}
        ).status_code
        == 403
    )
    bad = world.call(
        "team_admin", "POST", "/team/member_add", {"team_id": "team-a", "member": {"role": "user"}}
    )
    assert bad.status_code == 400 and "user_id" in error_of(bad)["message"]
    removed = world.call(
        "team_admin", "POST", "/team/member_delete", {"team_id": "team-a", "user_id": "fresh"}
    )
    assert removed.status_code == 200
    assert not TeamMembership.objects.filter(user__user_id="fresh").exists()
    gone = world.call(
        "team_admin", "POST", "/team/member_delete", {"team_id": "team-a", "user_id": "fresh"}
    )
    assert gone.status_code == 404


def test_team_models_add_and_delete(world: World) -> None:
    assert (
        world.call(
            "team_admin", "POST", "/team/model/add", {"team_id": "team-a", "models": ["gpt-4o"]}
        ).status_code
        == 403
    )
    added = world.call(
        "org_admin",
        "POST",
        "/team/model/add",
        {"team_id": "team-a", "models": ["gpt-4o", "claude"]},
    )
    assert added.json()["models"] == ["gpt-4o", "claude"]
    removed = world.call(
        "org_admin", "POST", "/team/model/delete", {"team_id": "team-a", "models": ["gpt-4o"]}
    )
    assert removed.json()["models"] == ["claude"]
    assert (
        world.call(
            "org_admin", "POST", "/team/model/add", {"team_id": "team-a", "models": []}
        ).status_code
        == 400
    )


def test_delete_teams(world: World) -> None:
    assert (
        world.call("team_admin", "POST", "/team/delete", {"team_ids": ["team-a"]}).status_code
        == 403
    )
    assert (
        world.call(
            "org_admin", "POST", "/team/delete", {"team_ids": ["team-a", "team-b"]}
        ).status_code
        == 403
    )
    assert Team.objects.filter(team_id__in=["team-a", "team-b"]).count() == 2
    response = world.call("org_admin", "DELETE", "/team/delete", {"team_ids": ["team-a"]})
    assert response.status_code == 200
    assert not Team.objects.filter(team_id="team-a").exists()
    assert not VirtualKey.objects.filter(key_alias="member-key").exists()
    assert AuditLog.objects.filter(action="deleted", object_type="team").exists()


def test_a_team_admin_cannot_pull_in_another_tenants_user(world: World) -> None:
    body = {"team_id": "team-a", "member": {"user_id": "outsider", "role": "user"}}
    response = world.call("team_admin", "POST", "/team/member_add", body)
    assert response.status_code == 403
    assert not TeamMembership.objects.filter(
        team__team_id="team-a", user__user_id="outsider"
    ).exists()
    # A colleague of the same organization, and a brand-new user, may be added.
    colleague = {"team_id": "team-a", "member": {"user_id": "org_admin", "role": "user"}}
    assert world.call("team_admin", "POST", "/team/member_add", colleague).status_code == 200
    fresh = {"team_id": "team-a", "member": {"user_email": "new@example.com"}}
    assert world.call("team_admin", "POST", "/team/member_add", fresh).status_code == 200
