"""Budget periods: ``budget_duration`` resets spend on schedule.

:func:`budgets_reset_due` zeroes the spend of every key, team, organization, user, membership
and end user whose ``budget_reset_at`` has passed and moves it to the next period. Every
worker of every instance runs it (:func:`reset_loop`), and each row is reset once: rows are
taken with ``SELECT ... FOR UPDATE SKIP LOCKED`` and, once committed, their next reset lies in
the future, so a concurrent run finds nothing to do. The spend counters of the limiter are
keyed by period (``apps.keys.scopes``): the caches reload on the change notification and the
new period's counters start from the reset spend.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.apps import apps as django_apps
from django.db import models, transaction
from django.db.models import Q
from django.utils import timezone

from apps.core import changes
from apps.core.conf import conf
from apps.core.db import db_task
from apps.keys.scopes import next_reset

logger = logging.getLogger(__name__)

_BATCH = 500
_APPS = ("keys", "teams")


def _field_names(model: type[models.Model]) -> set[str]:
    return {f.name for f in model._meta.get_fields()}


def budget_models() -> list[type[models.Model]]:
    """Every model holding a spend with a budget period (found by its fields, so models added
    later are reset too); ``Budget`` rows themselves hold no spend."""
    found = []
    for model in django_apps.get_models():
        if model._meta.app_label not in _APPS:
            continue
        if {"spend", "budget_duration", "budget_reset_at"} <= _field_names(model):
            found.append(model)
    return found


def _has_budget_fk(model: type[models.Model]) -> bool:
    try:
        field = model._meta.get_field("budget")
    except Exception:
        return False
    return bool(field.is_relation)


def _duration(row: Any) -> str:
    value = str(getattr(row, "budget_duration", "") or "")
    if not value and _has_budget_fk(type(row)) and row.budget is not None:
        value = str(row.budget.budget_duration or "")
    return value


def _next_after(duration: str, start: datetime, now: datetime) -> datetime | None:
    """The first end of a period of ``duration`` after ``now``, counting from ``start`` (so a
    monthly budget keeps its day of the month)."""
    when = next_reset(duration=duration, after=start)
    for _ in range(10_000):
        if when is None or when > now:
            return when
        when = next_reset(duration=duration, after=when)
    return next_reset(duration=duration, after=now)


def _reset_model(model: type[models.Model], now: datetime) -> int:
    has_budget = _has_budget_fk(model)
    has_duration = ~Q(budget_duration="")
    if has_budget:
        has_duration |= Q(budget__isnull=False) & ~Q(budget__budget_duration="")
    due = Q(budget_reset_at__lte=now) | (Q(budget_reset_at__isnull=True) & has_duration)
    queryset = model._default_manager.filter(due).order_by("pk")
    if has_budget:
        queryset = queryset.select_related("budget")
    fields = _field_names(model)
    count = 0
    with transaction.atomic():
        rows = list(queryset.select_for_update(skip_locked=True, of=("self",))[:_BATCH])
        for row in rows:
            duration = _duration(row)
            previous: datetime | None = row.budget_reset_at  # type: ignore[attr-defined]
            update: dict[str, Any] = {}
            if previous is not None:
                update["spend"] = Decimal(0)
                if "model_spend" in fields:
                    update["model_spend"] = {}
                count += 1
            update["budget_reset_at"] = (
                _next_after(duration, previous or now, now) if duration else None
            )
            model._default_manager.filter(pk=row.pk).update(**update)
        if rows:
            changes.changed(changes.TOPIC_KEYS)
    return count


def budgets_reset_due(*, now: datetime | None = None) -> int:
    """Reset every budget whose period ended by ``now``; returns how many were reset."""
    now = now or timezone.now()
    total = 0
    for model in budget_models():
        reset = _reset_model(model, now)
        if reset:
            logger.info("reset the spend of %d %s rows", reset, model._meta.verbose_name)
        total += reset
    return total


async def reset_loop() -> None:
    """Run :func:`budgets_reset_due` every ``GATEWAY_BUDGET_RESET_S`` seconds, for ever; 0
    leaves the resets to other processes."""
    run = db_task(budgets_reset_due)
    while True:
        interval = float(conf.GATEWAY_BUDGET_RESET_S)
        if interval <= 0:
            await asyncio.sleep(1.0)
            continue
        try:
            await run()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.warning("budget reset failed, retrying: %s", exc)
        await asyncio.sleep(interval)
