"""Writes inside an outer transaction (a test's, or a caller's atomic block) each account
for their own rows only."""

from __future__ import annotations

from decimal import Decimal

import pytest

from apps.teams.models import Team
from apps.usage.models import DailyUsage, UsageLog
from apps.usage.store import write_rows
from tests.usage.rows import full_row

pytestmark = pytest.mark.django_db


def test_two_writes_in_one_transaction_count_each_row_once():
    """Regression: the staging table is emptied at commit, so a second write in the same
    transaction used to count the first write's rows again."""
    team = Team.objects.create(team_alias="t")
    assert write_rows([full_row(1, team_id=team.pk, cost=Decimal("0.5"))]) == 1
    assert write_rows([full_row(2, team_id=team.pk, cost=Decimal("0.25"))]) == 1
    team.refresh_from_db()
    assert team.spend == Decimal("0.75")
    assert UsageLog.objects.count() == 2
    assert DailyUsage.objects.get(kind="team").requests == 2
