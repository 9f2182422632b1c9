"""/key/* routes: validation, success, and who may do what to whose keys."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from apps.core.models import AuditLog
from apps.keys import hashing
from apps.keys.models import VirtualKey
from tests.personas import World, build_world, error_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def world() -> World:
    return build_world()


def _key(world: World, who: str) -> VirtualKey:
    return VirtualKey.objects.get(digest=hashing.digest(world.keys[who]))


def test_generate_with_every_field(world: World) -> None:
    response = world.call(
        "master",
        "POST",
        "/key/generate",
        {
            "key_alias": "ci",
            "duration": "30d",
            "models": ["gpt-4o", "openai/*"],
            "aliases": {"fast": "gpt-4o-mini"},
            "max_budget": 1e-7,
            "soft_budget": "0.5",
            "budget_duration": "1mo",
            "rpm_limit": 60,
            "tpm_limit": 1000,
            "max_parallel_requests": 2,
            "model_max_budget": {"gpt-4o": {"budget_limit": 1, "time_period": "1d"}},
            "metadata": {"env": "ci"},
            "tags": ["nightly"],
            "user_id": "member",
            "team_id": "team-a",
        },
    )
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["key"].startswith("sk-") and body["token"] == hashing.digest(body["key"])
    key = VirtualKey.objects.get(digest=body["token"])
    assert key.max_budget == Decimal("1e-7")
    assert key.soft_budget == Decimal("0.5")
    assert key.user.user_id == "member" and key.team.team_id == "team-a"
    assert key.allowed_models == ["gpt-4o", "openai/*"]
    assert key.aliases == {"fast": "gpt-4o-mini"}
    assert key.metadata == {"env": "ci", "tags": ["nightly"]}
    assert key.model_max_budget == {"gpt-4o": {"budget_limit": "1", "time_period": "1d"}}
    assert key.budget_reset_at is not None and key.budget_reset_at > timezone.now()
    expected = timezone.now() + dt.timedelta(days=30)
    assert abs((key.expires_at - expected).total_seconds()) < 60
    assert body["max_budget"] == 1e-7 and body["organization_id"] == "org-a"
    entry = AuditLog.objects.filter(action="created", object_type="virtualkey").latest("pk")
    assert entry.actor == "master" and body["key"] not in str(entry.after)
    assert entry.after["digest"] == "[redacted]"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"max_budget": -1}, "max_budget"),
        ({"max_budget": "lots"}, "max_budget"),
        ({"duration": "forever"}, "duration"),
        ({"budget_duration": "monthly"}, "budget_duration"),
        ({"rpm_limit": -5}, "rpm_limit"),
        ({"rpm_limit": "many"}, "rpm_limit"),
        ({"max_parallel_requests": 2**40}, "max_parallel_requests"),
        ({"key_alias": "x" * 201}, "key_alias"),
        ({"models": "gpt-4o"}, "models"),
        ({"metadata": ["x"]}, "metadata"),
        ({"blocked": "yes"}, "blocked"),
        ({"key": "not-an-sk-key"}, "key"),
        ({"model_max_budget": {"gpt-4o": {"budget_limit": "x"}}}, "model_max_budget"),
        ({"model_max_budget": {"gpt-4o": {"budget_limit": 1}}}, "model_max_budget"),
    ],
)
def test_generate_refuses_bad_fields_naming_them(world: World, body: dict, param: str) -> None:
    response = world.call("master", "POST", "/key/generate", body)
    assert response.status_code == 400
    error = error_of(response)
    assert error["param"] == param and error["type"] == "invalid_request_error"
    assert param in error["message"]


def test_generate_for_an_unknown_team_is_404(world: World) -> None:
    response = world.call("master", "POST", "/key/generate", {"team_id": "nope"})
    assert response.status_code == 404
    assert error_of(response)["param"] == "team_id"


def test_a_body_that_is_not_json_is_a_400(world: World) -> None:
    response = world.client.post(
        "/key/generate",
        data="{not json",
        content_type="application/json",
        HTTP_AUTHORIZATION="Bearer sk-test-master-key",
    )
    assert response.status_code == 400
    error_of(response)


@pytest.mark.parametrize(
    ("who", "team_id", "status"),
    [
        ("master", "team-a", 200),
        ("proxy_admin", "team-a", 200),
        ("proxy_viewer", "team-a", 403),
        ("org_admin", "team-a", 200),
        ("team_admin", "team-a", 200),
        ("member", "team-a", 200),
        ("viewer", "team-a", 403),
        ("outsider", "team-a", 403),
        ("nobody", "team-a", 401),
        ("org_admin", "team-b", 403),
        ("team_admin", "team-b", 403),
    ],
)
def test_who_may_issue_keys_in_a_team(world: World, who: str, team_id: str, status: int) -> None:
    before = VirtualKey.objects.count()
    response = world.call(who, "POST", "/key/generate", {"team_id": team_id})
    assert response.status_code == status, response.json()
    assert VirtualKey.objects.count() == before + (1 if status == 200 else 0)
    if status != 200:
        error_of(response)


def test_a_member_issues_keys_for_themselves_only(world: World) -> None:
    own = world.call("member", "POST", "/key/generate", {"team_id": "team-a"})
    assert own.json()["user_id"] == "member"
    other = world.call(
        "member", "POST", "/key/generate", {"team_id": "team-a", "user_id": "viewer"}
    )
    assert other.status_code == 403
    moved = world.call(
        "team_admin", "POST", "/key/generate", {"team_id": "team-a", "user_id": "member"}
    )
    assert moved.status_code == 200 and moved.json()["user_id"] == "member"


@pytest.mark.parametrize(
    ("who", "target", "status"),
    [
        ("master", "member", 200),
        ("proxy_viewer", "member", 200),
        ("org_admin", "member", 200),
        ("team_admin", "member", 200),
        ("member", "member", 200),
        ("member", "team_admin", 403),
        ("viewer", "member", 403),
        ("outsider", "member", 403),
        ("team_admin", "outsider", 403),
        ("org_admin", "outsider", 403),
        ("nobody", "member", 401),
    ],
)
def test_key_info_permission_matrix(world: World, who: str, target: str, status: int) -> None:
    response = world.call(who, "GET", "/key/info", key=_key(world, target).digest)
    assert response.status_code == status
    if status == 200:
        assert response.json()["info"]["key_alias"] == f"{target}-key"
        assert world.keys[target] not in response.content.decode()
    else:
        assert "key_alias" not in response.content.decode()


def test_key_info_of_the_callers_own_key(world: World) -> None:
    response = world.call("viewer", "GET", "/key/info")
    assert response.status_code == 200
    assert response.json()["info"]["user_id"] == "viewer"
    assert world.call("master", "GET", "/key/info").status_code == 400


def test_key_info_by_raw_key_and_unknown_key(world: World) -> None:
    assert world.call("master", "GET", "/key/info", key=world.keys["member"]).status_code == 200
    missing = world.call("master", "GET", "/key/info", key="sk-does-not-exist")
    assert missing.status_code == 404 and error_of(missing)["param"] == "key"


@pytest.mark.parametrize(
    ("who", "expected"),
    [
        (
            "master",
            {
                "proxy_admin",
                "proxy_viewer",
                "org_admin",
                "team_admin",
                "member",
                "viewer",
                "outsider",
            },
        ),
        ("org_admin", {"org_admin", "team_admin", "member", "viewer"}),
        ("team_admin", {"team_admin", "member", "viewer"}),
        ("member", {"member"}),
        ("outsider", {"outsider"}),
    ],
)
def test_key_list_shows_only_what_the_caller_may_see(world: World, who: str, expected: set) -> None:
    response = world.call(who, "GET", "/key/list", return_full_object="true", size=100)
    assert response.status_code == 200
    aliases = {k["key_alias"].removesuffix("-key") for k in response.json()["keys"]}
    assert aliases == expected
    assert response.json()["total_count"] == len(expected)


def test_key_list_pages_and_filters(world: World) -> None:
    page = world.call("master", "GET", "/key/list", size=2, page=2)
    assert page.json()["current_page"] == 2 and len(page.json()["keys"]) == 2
    assert page.json()["total_pages"] == 4
    by_team = world.call("master", "GET", "/key/list", team_id="team-a")
    assert len(by_team.json()["keys"]) == 3
    assert world.call("master", "GET", "/key/list", size=0).status_code == 400


@pytest.mark.parametrize(
    ("who", "target", "status"),
    [
        ("team_admin", "member", 200),
        ("org_admin", "member", 200),
        ("member", "member", 200),
        ("viewer", "viewer", 403),
        ("proxy_viewer", "member", 403),
        ("outsider", "member", 403),
        ("team_admin", "outsider", 403),
    ],
)
def test_key_update_permission_matrix(world: World, who: str, target: str, status: int) -> None:
    key = _key(world, target)
    response = world.call(who, "POST", "/key/update", {"key": key.digest, "key_alias": "renamed"})
    assert response.status_code == status
    key.refresh_from_db()
    assert (key.key_alias == "renamed") is (status == 200)


def test_a_member_may_not_raise_their_own_limits(world: World) -> None:
    key = _key(world, "member")
    response = world.call("member", "POST", "/key/update", {"key": key.digest, "max_budget": 100})
    assert response.status_code == 403 and error_of(response)["param"] == "max_budget"
    ok = world.call("team_admin", "POST", "/key/update", {"key": key.digest, "max_budget": 100})
    assert ok.status_code == 200 and ok.json()["max_budget"] == 100


def test_a_team_admin_may_not_move_a_key_to_another_team(world: World) -> None:
    key = _key(world, "member")
    response = world.call(
        "team_admin", "POST", "/key/update", {"key": key.digest, "team_id": "team-b"}
    )
    assert response.status_code == 403
    key.refresh_from_db()
    assert key.team.team_id == "team-a"


def test_update_sets_expiry_and_clears_with_null(world: World) -> None:
    key = _key(world, "member")
    world.call(
        "master", "POST", "/key/update", {"key": key.digest, "duration": "1h", "max_budget": 5}
    )
    key.refresh_from_db()
    assert key.expires_at is not None and key.max_budget == 5
    world.call(
        "master", "POST", "/key/update", {"key": key.digest, "duration": None, "max_budget": None}
    )
    key.refresh_from_db()
    assert key.expires_at is None and key.max_budget is None


def test_block_and_unblock(world: World) -> None:
    key = _key(world, "member")
    assert world.call("member", "POST", "/key/block", {"key": key.digest}).status_code == 403
    assert world.call("outsider", "POST", "/key/block", {"key": key.digest}).status_code == 403
    response = world.call("team_admin", "POST", "/key/block", {"key": key.digest})
    assert response.status_code == 200 and response.json()["blocked"] is True
    # A blocked key no longer authenticates, on the management API either.
    assert world.call("member", "GET", "/key/info").status_code == 401
    world.call("team_admin", "POST", "/key/unblock", {"key": key.digest})
    assert world.call("member", "GET", "/key/info").status_code == 200
    actions = list(AuditLog.objects.filter(object_id=str(key.pk)).values_list("action", flat=True))
    assert "blocked" in actions and "unblocked" in actions


def test_delete_by_key_and_by_alias(world: World) -> None:
    member, viewer = _key(world, "member"), _key(world, "viewer")
    denied = world.call("outsider", "POST", "/key/delete", {"keys": [member.digest]})
    assert denied.status_code == 403 and VirtualKey.objects.filter(pk=member.pk).exists()
    # An alias the caller cannot see is as good as unknown: nothing of another tenant changes.
    hidden = world.call("outsider", "POST", "/key/delete", {"key_aliases": ["member-key"]})
    assert hidden.status_code == 404 and VirtualKey.objects.filter(pk=member.pk).exists()
    ok = world.call("team_admin", "POST", "/key/delete", {"keys": [world.keys["member"]]})
    assert ok.status_code == 200 and not VirtualKey.objects.filter(pk=member.pk).exists()
    by_alias = world.call("master", "DELETE", "/key/delete", {"key_aliases": ["viewer-key"]})
    assert by_alias.status_code == 200 and not VirtualKey.objects.filter(pk=viewer.pk).exists()
    assert world.call("master", "POST", "/key/delete", {}).status_code == 400


def test_key_aliases_are_not_unique(world: World) -> None:
    for _ in range(2):
        response = world.call("master", "POST", "/key/generate", {"key_alias": "same"})
        assert response.status_code == 200
    assert VirtualKey.objects.filter(key_alias="same").count() == 2


def test_unauthenticated_and_bad_keys(world: World) -> None:
    missing = world.call("nobody", "GET", "/key/list")
    assert missing.status_code == 401 and error_of(missing)["code"] == "missing_api_key"
    world.keys["nobody"] = "sk-wrong"
    wrong = world.call("nobody", "GET", "/key/list")
    assert wrong.status_code == 401 and error_of(wrong)["code"] == "invalid_api_key"


def test_expired_keys_cannot_manage(world: World) -> None:
    VirtualKey.objects.filter(digest=hashing.digest(world.keys["proxy_admin"])).update(
        expires_at=timezone.now() - dt.timedelta(seconds=1)
    )
    assert world.call("proxy_admin", "GET", "/key/list").status_code == 401
