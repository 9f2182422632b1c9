"""Admission against scopes, without a gateway: per-model budgets, soft budgets, headers."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from decimal import Decimal

import pytest

from apps.core import ratelimit
from apps.core.errors import BudgetExceeded, RateLimited
from apps.keys import limits
from apps.keys.scopes import ModelBudget, Scope, units


@pytest.fixture(autouse=True)
def _local_counters(settings) -> Iterator[None]:
    settings.REDIS_URL = None
    ratelimit.reset()
    yield
    ratelimit.reset()


def _ident() -> str:
    return str(time.monotonic_ns())


async def test_per_model_budget_refuses_only_that_model():
    scope = Scope(
        level="key",
        ident=_ident(),
        model_budgets=(ModelBudget(model="gpt-4o", limit=Decimal("0.01"), period_s=86400),),
    )
    admission = await limits.admit(scopes=[scope], model="gpt-4o")
    assert admission is not None
    await limits.settle(admission, tokens=10, cost=Decimal("0.02"))
    with pytest.raises(BudgetExceeded) as refused:
        await limits.admit(scopes=[scope], model="gpt-4o")
    message = refused.value.message
    assert "Budget has been exceeded" in message
    assert "key budget for model 'gpt-4o'" in message
    assert "max budget 0.01 USD" in message and "current spend 0.02 USD" in message
    other = await limits.admit(scopes=[scope], model="gpt-4o-mini")
    assert other is None  # no counter applies to another model


async def test_first_spent_level_refuses():
    key = Scope(level="key", ident=_ident(), max_budget=Decimal(10), spend=Decimal(1))
    team = Scope(level="team", ident=_ident(), max_budget=Decimal(5), spend=Decimal(5))
    with pytest.raises(BudgetExceeded, match="The team budget: max budget 5 USD"):
        await limits.admit(scopes=[key, team], model="m")


async def test_soft_budget_alerts_once_and_never_refuses(caplog):
    caplog.set_level(logging.WARNING, logger="apps.keys.limits")
    scope = Scope(level="team", ident=_ident(), soft_budget=Decimal("0.03"), spend=Decimal("0.01"))
    for _ in range(4):
        admission = await limits.admit(scopes=[scope], model="m")
        assert admission is not None
        await limits.settle(admission, tokens=0, cost=Decimal("0.01"))
    alerts = [r.getMessage() for r in caplog.records if "soft budget" in r.getMessage()]
    assert len(alerts) == 1
    assert "team" in alerts[0] and "0.03" in alerts[0]


async def test_headers_show_the_tightest_limit():
    key = Scope(level="key", ident=_ident(), rpm_limit=100, tpm_limit=1000)
    team = Scope(level="team", ident=_ident(), rpm_limit=2, tpm_limit=5000)
    admission = await limits.admit(scopes=[key, team], model="m")
    assert admission is not None
    headers = dict(admission.headers())
    assert headers[b"x-ratelimit-limit-requests"] == b"2"
    assert headers[b"x-ratelimit-remaining-requests"] == b"1"
    assert headers[b"x-ratelimit-limit-tokens"] == b"1000"


async def test_settling_twice_charges_once():
    scope = Scope(level="key", ident=_ident(), max_budget=Decimal(1))
    admission = await limits.admit(scopes=[scope], model="m")
    assert admission is not None
    await limits.settle(admission, tokens=0, cost=Decimal("0.5"))
    await limits.settle(admission, tokens=0, cost=Decimal("0.5"))
    again = await limits.admit(scopes=[scope], model="m")
    assert again is not None
    assert again.outcome.used == (units(Decimal("0.5")),)


async def test_rate_refusal_carries_retry_after():
    scope = Scope(level="user", ident=_ident(), rpm_limit=1)
    await limits.admit(scopes=[scope], model="m")
    with pytest.raises(RateLimited) as refused:
        await limits.admit(scopes=[scope], model="m")
    assert 1 <= int(refused.value.headers["retry-after"]) <= 61
    assert "this user" in refused.value.message


def test_units_round_costs_up_and_keep_tiny_budgets():
    assert units(Decimal("0.0000001")) == 100
    assert units(Decimal("1E-12")) == 1
    assert units(Decimal(0)) == 0


async def test_refusal_of_a_budget_with_a_reset_time_is_not_a_server_error():
    """Regression: naming the reset time failed with AttributeError (django.utils.timezone
    has no UTC), which the client saw as a 500."""
    from datetime import UTC, datetime, timedelta

    reset_at = datetime.now(UTC) + timedelta(hours=1)
    scope = Scope(
        level="team",
        ident=_ident(),
        max_budget=Decimal(1),
        spend=Decimal(1),
        budget_reset_at=reset_at,
    )
    with pytest.raises(BudgetExceeded) as refused:
        await limits.admit(scopes=[scope], model="m")
    assert "it resets at " + reset_at.strftime("%Y-%m-%dT%H:%M:%SZ") in refused.value.message
    assert 3500 <= int(refused.value.headers["retry-after"]) <= 3600
