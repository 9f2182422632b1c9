"""A replayed row (after a partial failure, or a spool file written twice) is stored and
counted once."""

from __future__ import annotations

from decimal import Decimal

import pytest

from apps.keys.services import key_issue
from apps.teams.models import Organization, Team
from apps.usage.models import DailyUsage, UsageLog
from apps.usage.store import write_rows
from tests.usage.rows import full_row

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_replayed_batch_adds_nothing():
    org = Organization.objects.create()
    team = Team.objects.create(team_alias="t", organization=org)
    key, _ = key_issue(team=team)
    rows = [
        full_row(n, key_id=key.pk, team_id=team.pk, organization_id=org.pk, cost=Decimal("0.25"))
        for n in range(4)
    ]
    assert write_rows(rows) == 4
    assert write_rows(rows) == 0
    assert write_rows([*rows[:2], full_row(9, key_id=key.pk, cost=Decimal("1"))]) == 1
    assert UsageLog.objects.count() == 5
    key.refresh_from_db()
    team.refresh_from_db()
    org.refresh_from_db()
    assert key.spend == Decimal("2.00")
    assert team.spend == org.spend == Decimal("1.00")
    day = DailyUsage.objects.get(kind="model_group", entity="gpt")
    assert (day.requests, day.cost) == (5, Decimal("2.00"))


def test_the_same_row_twice_in_one_batch_is_written_once():
    row = full_row(1, cost=Decimal("0.5"))
    assert write_rows([row, dict(row)]) == 1
    assert UsageLog.objects.count() == 1
    assert DailyUsage.objects.get(kind="model_group").requests == 1


def test_organization_spend_is_written():
    """Regression: organization spend was never written."""
    org = Organization.objects.create()
    write_rows([full_row(1, organization_id=org.pk, cost=Decimal("0.125"))])
    org.refresh_from_db()
    assert org.spend == Decimal("0.125")
