"""Budget periods: spend resets when ``budget_duration`` says, once, whatever the number of
processes running the reset."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from apps.keys.budgets import budget_models, budgets_reset_due
from apps.keys.models import VirtualKey
from apps.keys.services import key_issue
from apps.teams.models import Team

pytestmark = pytest.mark.django_db(transaction=True)

# Far ahead of the real clock: a gateway serving in this process (started by other tests)
# resets budgets due by the real time, never these.
NOW = datetime(2100, 3, 31, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _no_background_resets(settings) -> Iterator[None]:
    """The serving gateway's own reset loop stands aside (the test settings turn it off; a
    run in flight, turned on by an earlier test, ends first)."""
    settings.GATEWAY_BUDGET_RESET_S = 0
    time.sleep(0.3)
    yield


def _key(**fields) -> VirtualKey:
    key, _ = key_issue()
    VirtualKey.objects.filter(pk=key.pk).update(**fields)
    return VirtualKey.objects.get(pk=key.pk)


def test_every_budget_holder_is_reset():
    assert VirtualKey in budget_models()
    assert Team in budget_models()


def test_spend_resets_when_the_period_ends_and_the_next_one_starts():
    key = _key(spend=Decimal(5), budget_duration="30s", budget_reset_at=NOW - timedelta(seconds=1))
    assert budgets_reset_due(now=NOW) == 1
    key.refresh_from_db()
    assert key.spend == 0
    assert key.budget_reset_at == NOW + timedelta(seconds=29)
    assert budgets_reset_due(now=NOW) == 0


def test_a_period_not_over_is_left_alone():
    key = _key(spend=Decimal(5), budget_duration="1h", budget_reset_at=NOW + timedelta(seconds=1))
    assert budgets_reset_due(now=NOW) == 0
    key.refresh_from_db()
    assert key.spend == 5


def test_missed_periods_do_not_shift_the_schedule():
    """A gateway that was down for days resets once, at the next boundary of its schedule."""
    start = NOW - timedelta(days=3, minutes=30)
    key = _key(spend=Decimal(5), budget_duration="1d", budget_reset_at=start)
    assert budgets_reset_due(now=NOW) == 1
    key.refresh_from_db()
    assert key.budget_reset_at == start + timedelta(days=4)


def test_monthly_budget_resets_on_the_same_day_clamped_to_the_month():
    start = datetime(2101, 1, 31, tzinfo=UTC)
    key = _key(spend=Decimal(1), budget_duration="1mo", budget_reset_at=start)
    assert budgets_reset_due(now=datetime(2101, 2, 1, tzinfo=UTC)) == 1
    key.refresh_from_db()
    assert key.budget_reset_at == datetime(2101, 2, 28, tzinfo=UTC)


def test_a_duration_without_a_reset_time_starts_its_first_period():
    key = _key(spend=Decimal(5), budget_duration="1h")
    assert budgets_reset_due(now=NOW) == 0
    key.refresh_from_db()
    assert key.spend == 5
    assert key.budget_reset_at == NOW + timedelta(hours=1)


def test_team_budget_resets_too():
    team = Team.objects.create(
        team_alias="t", spend=Decimal(3), budget_duration="1d", budget_reset_at=NOW
    )
    assert budgets_reset_due(now=NOW) == 1
    team.refresh_from_db()
    assert team.spend == 0


def test_concurrent_runs_reset_each_budget_once():
    """Several workers and instances run the reset at the same moment: one reset per row."""
    keys = [
        _key(spend=Decimal(1), budget_duration="1h", budget_reset_at=NOW - timedelta(minutes=1))
        for _ in range(20)
    ]
    counts: list[int] = []
    barrier = threading.Barrier(4)

    def run() -> None:
        from django.db import connection

        barrier.wait()
        try:
            counts.append(budgets_reset_due(now=NOW))
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sum(counts) == len(keys)
    assert set(VirtualKey.objects.values_list("spend", flat=True)) == {Decimal(0)}
