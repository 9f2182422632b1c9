"""/customer/* (and /end_user/*) and /budget/* routes: proxy admins only."""

from __future__ import annotations

from decimal import Decimal

import pytest

from apps.teams.models import Budget, EndUser
from tests.personas import World, build_world, error_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def world() -> World:
    return build_world()


@pytest.mark.parametrize("prefix", ["/customer", "/end_user"])
def test_customer_lifecycle(world: World, prefix: str) -> None:
    body = {
        "user_id": "cust-1",
        "alias": "Cust",
        "allowed_model_region": "eu",
        "default_model": "gpt-4o",
        "max_budget": 0.5,
    }
    new = world.call("master", "POST", f"{prefix}/new", body)
    assert new.status_code == 200, new.json()
    assert new.json()["allowed_model_region"] == "eu" and new.json()["max_budget"] == 0.5
    info = world.call("master", "GET", f"{prefix}/info", end_user_id="cust-1")
    assert info.json()["default_model"] == "gpt-4o"
    body = {"user_id": "cust-1", "allowed_model_region": "us"}
    world.call("master", "POST", f"{prefix}/update", body)
    assert EndUser.objects.get(user_id="cust-1").allowed_model_region == "us"
    world.call("master", "POST", f"{prefix}/block", {"user_ids": ["cust-1"]})
    assert EndUser.objects.get(user_id="cust-1").blocked
    world.call("master", "POST", f"{prefix}/unblock", {"user_ids": ["cust-1"]})
    assert not EndUser.objects.get(user_id="cust-1").blocked
    listed = world.call("master", "GET", f"{prefix}/list").json()
    assert [c["user_id"] for c in listed] == ["cust-1"]
    world.call("master", "POST", f"{prefix}/delete", {"user_ids": ["cust-1"]})
    assert not EndUser.objects.exists()


def test_customer_validation(world: World) -> None:
    body = {"user_id": "c", "allowed_model_region": "mars"}
    region = world.call("master", "POST", "/customer/new", body)
    assert region.status_code == 400 and error_of(region)["param"] == "allowed_model_region"
    body = {"user_id": "c", "max_budget": 1, "budget_id": "b"}
    assert world.call("master", "POST", "/customer/new", body).status_code == 400
    assert world.call("master", "POST", "/customer/new", {"alias": "no id"}).status_code == 400
    world.call("master", "POST", "/customer/new", {"user_id": "c"})
    assert world.call("master", "POST", "/customer/new", {"user_id": "c"}).status_code == 409
    assert world.call("master", "GET", "/customer/info", end_user_id="zzz").status_code == 404
    assert world.call("master", "GET", "/customer/info").status_code == 400


@pytest.mark.parametrize("who", ["org_admin", "team_admin", "member", "outsider"])
def test_customers_and_budgets_are_for_proxy_admins(world: World, who: str) -> None:
    EndUser.objects.create(user_id="c")
    assert world.call(who, "POST", "/customer/new", {"user_id": "d"}).status_code == 403
    assert world.call(who, "GET", "/customer/info", end_user_id="c").status_code == 403
    assert world.call(who, "POST", "/customer/block", {"user_ids": ["c"]}).status_code == 403
    assert world.call(who, "POST", "/budget/new", {"max_budget": 1}).status_code == 403
    assert world.call(who, "GET", "/budget/list").status_code == 403
    assert not EndUser.objects.get(user_id="c").blocked and not Budget.objects.exists()


def test_proxy_viewers_read_customers_and_budgets_but_change_nothing(world: World) -> None:
    EndUser.objects.create(user_id="c")
    assert world.call("proxy_viewer", "GET", "/customer/info", end_user_id="c").status_code == 200
    assert world.call("proxy_viewer", "GET", "/budget/list").status_code == 200
    blocked = world.call("proxy_viewer", "POST", "/customer/block", {"user_ids": ["c"]})
    assert blocked.status_code == 403


def test_a_shared_budget_referenced_by_keys_and_end_users(world: World) -> None:
    body = {
        "budget_id": "small",
        "max_budget": 1e-7,
        "rpm_limit": 5,
        "tpm_limit": 100,
        "budget_duration": "1d",
    }
    new = world.call("master", "POST", "/budget/new", body)
    assert new.status_code == 200, new.json()
    assert Budget.objects.get(budget_id="small").max_budget == Decimal("1e-7")
    key = world.call("master", "POST", "/key/generate", {"budget_id": "small"}).json()
    assert key["budget_id"] == "small"
    cust = world.call("master", "POST", "/customer/new", {"user_id": "c", "budget_id": "small"})
    assert cust.json()["litellm_budget_table"]["rpm_limit"] == 5
    assert EndUser.objects.get(user_id="c").effective("max_budget") == Decimal("1e-7")
    missing = world.call("master", "POST", "/key/generate", {"budget_id": "nope"})
    assert missing.status_code == 404 and error_of(missing)["param"] == "budget_id"
    assert world.call("master", "POST", "/budget/delete", {"id": "small"}).status_code == 409
    body = {"budget_id": "small", "rpm_limit": 7}
    assert world.call("master", "POST", "/budget/update", body).json()["rpm_limit"] == 7
    info = world.call("master", "POST", "/budget/info", {"budgets": ["small"]})
    assert info.json()[0]["budget_id"] == "small"
