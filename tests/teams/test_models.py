"""The tenancy data model: ids identify, aliases are labels, budgets are exact and shared."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError

from apps.keys.models import VirtualKey
from apps.keys.services import key_issue
from apps.teams.models import (
    Budget,
    EndUser,
    GatewayUser,
    Organization,
    Team,
    TeamMembership,
    TeamRole,
)

pytestmark = pytest.mark.django_db


def test_aliases_are_labels_and_ids_are_generated_and_unique() -> None:
    org_a = Organization.objects.create(organization_alias="acme")
    org_b = Organization.objects.create(organization_alias="acme")
    team_a = Team.objects.create(team_alias="research", organization=org_a)
    team_b = Team.objects.create(team_alias="research", organization=org_a)
    assert org_a.organization_id != org_b.organization_id
    assert team_a.team_id != team_b.team_id
    with pytest.raises(IntegrityError):
        Team.objects.create(team_id=team_a.team_id)


def test_client_given_ids_are_kept() -> None:
    team = Team.objects.create(team_id="team-42", team_alias="x")
    assert Team.objects.get(team_id="team-42") == team


def test_tiny_budgets_and_spend_are_kept_exactly() -> None:
    team = Team.objects.create(max_budget=Decimal("1e-7"), spend=Decimal("0.000000000001"))
    team.refresh_from_db()
    assert team.max_budget == Decimal("0.0000001")
    assert team.spend == Decimal("0.000000000001")
    key, _ = key_issue(max_budget=Decimal("1e-7"))
    assert VirtualKey.objects.get(pk=key.pk).max_budget == Decimal("1e-7")


def test_inline_limits_win_over_the_referenced_budget() -> None:
    budget = Budget.objects.create(budget_id="small", max_budget=Decimal(5), rpm_limit=10)
    end_user = EndUser.objects.create(user_id="customer-1", budget=budget, rpm_limit=3)
    assert end_user.effective("rpm_limit") == 3
    assert end_user.effective("max_budget") == Decimal(5)
    assert end_user.effective("tpm_limit") is None


def test_a_budget_in_use_cannot_be_deleted() -> None:
    from django.db.models import ProtectedError

    budget = Budget.objects.create(max_budget=Decimal(1))
    Team.objects.create(budget=budget)
    with pytest.raises(ProtectedError):
        budget.delete()


def test_budget_duration_is_validated() -> None:
    with pytest.raises(ValidationError) as info:
        Team(budget_duration="monthly").full_clean()
    assert "budget_duration" in info.value.message_dict


def test_one_membership_per_user_and_team() -> None:
    team = Team.objects.create()
    user = GatewayUser.objects.create(user_id="alice")
    TeamMembership.objects.create(team=team, user=user, role=TeamRole.ADMIN)
    with pytest.raises(IntegrityError):
        TeamMembership.objects.create(team=team, user=user)


def test_key_issue_with_a_user_id_creates_the_internal_user_once() -> None:
    first, _ = key_issue(user_id="bob")
    second, _ = key_issue(user_id="bob")
    assert first.user == second.user == GatewayUser.objects.get(user_id="bob")
