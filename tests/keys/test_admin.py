"""Keys in the admin: every field kept on create, the new key shown once from server-side state,
and the same tenant rules as the API."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth import get_user_model

from apps.core.models import AuditLog
from apps.keys import hashing
from apps.keys.models import VirtualKey
from apps.keys.services import key_issue
from apps.teams.models import GatewayUser, Team, TeamMembership

pytestmark = pytest.mark.django_db


def _login(
    client: Any,
    name: str,
    *,
    superuser: bool = False,
    team: Team | None = None,
    role: str = "admin",
) -> GatewayUser:
    model = get_user_model()
    if superuser:
        login = model.objects.create_superuser(name, f"{name}@example.com", "pw-123456")
    else:
        login = model.objects.create_user(name, f"{name}@example.com", "pw-123456", is_staff=True)
    user = GatewayUser.objects.create(user_id=name, auth_user=login)
    if team is not None:
        TeamMembership.objects.create(team=team, user=user, role=role)
    client.force_login(login)
    return user


def _form(**overrides: str) -> dict[str, str]:
    data = {
        "key_alias": "from-admin",
        "team": "",
        "user": "",
        "organization": "",
        "budget": "",
        "allowed_models": '["gpt-4o"]',
        "aliases": "{}",
        "max_budget": "0.0000001",
        "soft_budget": "",
        "budget_duration": "1mo",
        "rpm_limit": "60",
        "tpm_limit": "",
        "max_parallel_requests": "",
        "model_max_budget": "{}",
        "expires_at_0": "",
        "expires_at_1": "",
        "blocked": "on",
        "metadata": "{}",
    }
    data.update(overrides)
    return data


def test_admin_key_create_keeps_user_blocked_and_budget_duration(client: Any) -> None:
    _login(client, "root", superuser=True)
    owner = GatewayUser.objects.create(user_id="owner")
    response = client.post("/admin/keys/virtualkey/add/", _form(user=str(owner.pk)))
    assert response.status_code == 302, response.content.decode()[:2000]
    key = VirtualKey.objects.get(key_alias="from-admin")
    assert key.user == owner and key.blocked and key.budget_duration == "1mo"
    assert key.budget_reset_at is not None and key.rpm_limit == 60
    assert key.max_budget == Decimal("1e-7")
    assert AuditLog.objects.filter(source="admin", action="created", object_id=str(key.pk)).exists()


def test_the_new_key_is_shown_once_on_its_own_page(client: Any) -> None:
    _login(client, "root", superuser=True)
    response = client.post("/admin/keys/virtualkey/add/", _form())
    page = response["Location"]
    assert "/admin/keys/virtualkey/shown/" in page
    # Not in a cookie: the messages cookie (signed, not encrypted) carries no key.
    assert "sk-" not in str(response.cookies.get("messages", ""))
    shown = client.get(page)
    html = shown.content.decode()
    raw = html.split('<code id="new-key-1">', 1)[1].split("</code>", 1)[0]
    key = VirtualKey.objects.get(key_alias="from-admin")
    assert hashing.digest(raw) == key.digest
    assert 'class="button copy-key"' in html and "no-store" in shown["Cache-Control"]
    again = client.get(page).content.decode()
    assert raw not in again and "already shown" in again


def test_regenerate_action_shows_the_new_secret_once(client: Any) -> None:
    _login(client, "root", superuser=True)
    key, old = key_issue(key_alias="k")
    response = client.post(
        "/admin/keys/virtualkey/",
        {"action": "regenerate_keys", "_selected_action": [str(key.pk)]},
    )
    html = client.get(response["Location"]).content.decode()
    key.refresh_from_db()
    assert old not in html and key.digest != hashing.digest(old)
    raw = html.split('<code id="new-key-1">', 1)[1].split("</code>", 1)[0]
    assert hashing.digest(raw) == key.digest


def test_a_team_admin_sees_and_opens_only_their_teams_keys(client: Any) -> None:
    mine, theirs = Team.objects.create(team_alias="mine"), Team.objects.create(team_alias="theirs")
    _login(client, "lead", team=mine)
    own_key, _ = key_issue(team=mine, key_alias="own")
    other_key, _ = key_issue(team=theirs, key_alias="other")
    listing = client.get("/admin/keys/virtualkey/").content.decode()
    assert "own" in listing and "other" not in listing
    assert client.get(f"/admin/keys/virtualkey/{own_key.pk}/change/").status_code == 200
    assert client.get(f"/admin/keys/virtualkey/{other_key.pk}/change/").status_code == 403
    assert (
        client.post(f"/admin/keys/virtualkey/{other_key.pk}/delete/", {"post": "yes"}).status_code
        == 403
    )
    assert VirtualKey.objects.filter(pk=other_key.pk).exists()
    # Their team's page is just as closed; their own is open.
    assert client.get(f"/admin/teams/team/{theirs.pk}/change/").status_code == 403
    assert client.get(f"/admin/teams/team/{mine.pk}/change/").status_code == 200


def test_a_team_admin_cannot_issue_keys_into_another_team(client: Any) -> None:
    mine, theirs = Team.objects.create(team_alias="mine"), Team.objects.create(team_alias="theirs")
    _login(client, "lead", team=mine)
    response = client.post("/admin/keys/virtualkey/add/", _form(team=str(theirs.pk)))
    # The other team is not even a choice in the form.
    assert response.status_code == 200 and "team" in response.context["adminform"].form.errors
    assert not VirtualKey.objects.filter(team=theirs).exists()
    ok = client.post("/admin/keys/virtualkey/add/", _form(team=str(mine.pk)))
    assert ok.status_code == 302 and VirtualKey.objects.filter(team=mine).count() == 1


def test_a_member_changes_only_labels_of_their_own_key(client: Any) -> None:
    team = Team.objects.create(team_alias="t")
    member = _login(client, "member", team=team, role="member")
    key, _ = key_issue(team=team, user=member, key_alias="mine", max_budget=1)
    page = client.get(f"/admin/keys/virtualkey/{key.pk}/change/").content.decode()
    assert 'name="key_alias"' in page and 'name="max_budget"' not in page


def test_staff_without_a_role_see_no_tenancy_data(client: Any) -> None:
    team = Team.objects.create(team_alias="t")
    key, _ = key_issue(team=team, key_alias="k")
    model = get_user_model()
    client.force_login(
        model.objects.create_user("staff", "s@example.com", "pw-123456", is_staff=True)
    )
    assert client.get("/admin/keys/virtualkey/").status_code == 403
    assert client.get(f"/admin/keys/virtualkey/{key.pk}/change/").status_code == 403
    assert client.get("/admin/core/auditlog/").status_code == 403


def test_audit_log_is_read_only_for_admins(client: Any) -> None:
    _login(client, "root", superuser=True)
    key_issue(key_alias="k")
    entry = AuditLog.objects.get()
    assert client.get("/admin/core/auditlog/").status_code == 200
    assert (
        client.post(f"/admin/core/auditlog/{entry.pk}/delete/", {"post": "yes"}).status_code == 403
    )
    assert AuditLog.objects.filter(pk=entry.pk).exists()


def test_an_org_admin_cannot_raise_roles_or_budgets_in_the_admin(client: Any) -> None:
    from apps.teams.models import Organization, OrganizationMembership

    org = Organization.objects.create(organization_alias="o")
    boss = _login(client, "boss")
    OrganizationMembership.objects.create(organization=org, user=boss, role="org_admin")
    worker = GatewayUser.objects.create(user_id="worker")
    OrganizationMembership.objects.create(organization=org, user=worker)
    user_page = client.get(f"/admin/teams/gatewayuser/{worker.pk}/change/").content.decode()
    assert 'name="user_alias"' in user_page and 'name="user_role"' not in user_page
    org_page = client.get(f"/admin/teams/organization/{org.pk}/change/").content.decode()
    assert 'name="organization_alias"' in org_page and 'name="max_budget"' not in org_page
