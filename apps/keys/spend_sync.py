"""Spend every instance sees, without Redis: the database's spend columns (written by every
instance's usage writer) are read back every ``GATEWAY_SPEND_SYNC_S`` into this process's
budget counters, which never go below them. With Redis the shared counters already see every
call at once, and nothing is read.

Only the budgets of callers this process has seen are synced (the scopes register here when
they are built), in one query per model.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from decimal import Decimal

from django.apps import apps as django_apps

from apps.core import changes, ratelimit
from apps.core.conf import conf
from apps.core.db import db_task

logger = logging.getLogger(__name__)

_MAX_WATCHED = 100_000
# (model label, primary key) -> budget counter names fed by that row's spend
_watched: dict[tuple[str, object], set[str]] = defaultdict(set)


def watch(model_label: str, pk: object, counter_name: str) -> None:
    if len(_watched) >= _MAX_WATCHED:
        _watched.clear()
    _watched[(model_label, pk)].add(counter_name)


def forget() -> None:
    _watched.clear()


# Scopes are rebuilt after every tenancy change, with new counter names after a reset.
changes.subscribe(changes.TOPIC_KEYS, forget)


def read_spend() -> dict[str, int]:
    """The recorded spend, in the limiter's units, of every watched budget counter."""
    from apps.keys.scopes import units

    by_model: dict[str, list[object]] = defaultdict(list)
    for label, pk in list(_watched):
        by_model[label].append(pk)
    values: dict[str, int] = {}
    for label, pks in by_model.items():
        model = django_apps.get_model(label)
        rows = model._default_manager.filter(pk__in=pks).values_list("pk", "spend")
        for pk, spend in rows:
            for name in _watched.get((label, pk), ()):
                values[name] = units(Decimal(spend or 0))
    return values


async def sync_loop() -> None:
    """Sync every ``GATEWAY_SPEND_SYNC_S`` seconds, for ever; 0 turns the sync off."""
    read = db_task(read_spend)
    while True:
        interval = float(conf.GATEWAY_SPEND_SYNC_S)
        if interval <= 0:
            await asyncio.sleep(1.0)
            continue
        try:
            if _watched and not ratelimit.shared():
                ratelimit.raise_local_totals(await read())
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.warning("spend sync failed, retrying: %s", exc)
        await asyncio.sleep(interval)
