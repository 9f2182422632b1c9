"""Spend and daily rollups from newly written usage rows, aggregated per flush.

Every holder of spend is updated once per flush with the flush's total, tables in a fixed order
and rows locked in id order, so concurrent writers (workers, instances) queue behind each other
instead of deadlocking. PostgreSQL does the aggregation itself from the staging table the rows
were copied into (no Python work per row); other databases aggregate here.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date
from decimal import Decimal
from typing import Any

from django.db import connection, models
from django.db.models import F

from apps.keys.models import VirtualKey
from apps.teams.models import Organization, Team
from apps.usage.models import DailyUsage

Row = dict[str, Any]


@dataclass(frozen=True, slots=True)
class SpendTarget:
    """A table holding ``spend``, found from a usage row's ``field`` by its ``lookup``."""

    model: type[models.Model]
    field: str
    lookup: str = "id"


# The fixed order in which spend holders are locked and updated.
SPEND_TARGETS: tuple[SpendTarget, ...] = (
    SpendTarget(VirtualKey, "key_id"),
    SpendTarget(Team, "team_id"),
    SpendTarget(Organization, "organization_id"),
)

# Rollup kind -> the row's column naming the entity (text in the rollup table).
ROLLUP_KINDS: tuple[tuple[str, str], ...] = (
    (DailyUsage.Kind.KEY, "key_id"),
    (DailyUsage.Kind.TEAM, "team_id"),
    (DailyUsage.Kind.ORGANIZATION, "organization_id"),
    (DailyUsage.Kind.USER, "user_id"),
    (DailyUsage.Kind.END_USER, "end_user"),
    (DailyUsage.Kind.MODEL_GROUP, "model_group"),
    (DailyUsage.Kind.DEPLOYMENT, "deployment_id"),
)
_COUNTERS = ("prompt_tokens", "completion_tokens", "cached_tokens", "total_tokens")


# --- PostgreSQL: from the staging table, in one round trip -------------------------------------


def _spend_sql(target: SpendTarget, stage: str) -> str:
    quote = connection.ops.quote_name
    table = quote(target.model._meta.db_table)
    lookup_field = target.model._meta.get_field(target.lookup)
    assert isinstance(lookup_field, models.Field)
    lookup = quote(str(lookup_field.column))
    field = quote(target.field)
    amounts = (
        f"SELECT {field} AS ref, sum(cost) AS amount FROM {stage} "  # noqa: S608
        f"WHERE {field} IS NOT NULL AND cost > 0 GROUP BY {field}"
    )
    return (
        f"SELECT 1 FROM {table} WHERE {lookup} IN (SELECT ref FROM ({amounts}) a) "  # noqa: S608
        f"ORDER BY {lookup} FOR UPDATE;\n"
        f"UPDATE {table} AS t SET spend = t.spend + v.amount "
        f"FROM ({amounts}) AS v WHERE t.{lookup} = v.ref;\n"
    )


def _rollup_sql(stage: str) -> str:
    table = connection.ops.quote_name(DailyUsage._meta.db_table)
    dims = ", ".join(
        f"('{kind}', NULLIF(s.{column}::text, ''))"
        if kind != DailyUsage.Kind.MODEL_GROUP
        else f"('{kind}', s.{column}::text)"
        for kind, column in ROLLUP_KINDS
    )
    sums = ", ".join(f"sum(s.{c})" for c in _COUNTERS)
    updates = ", ".join(
        f"{c} = {table}.{c} + EXCLUDED.{c}" for c in ("requests", "errors", *_COUNTERS, "cost")
    )
    return (
        f"INSERT INTO {table} (day, kind, entity, model_group, requests, errors, "  # noqa: S608
        f"{', '.join(_COUNTERS)}, cost) "
        f"SELECT (s.start_time AT TIME ZONE 'UTC')::date, d.kind, d.entity, s.model_group, "
        f"count(*), count(*) FILTER (WHERE s.status_code >= 400), {sums}, sum(s.cost) "
        f"FROM {stage} AS s CROSS JOIN LATERAL (VALUES {dims}) AS d(kind, entity) "
        f"WHERE d.entity IS NOT NULL GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4 "
        f"ON CONFLICT (day, kind, entity, model_group) DO UPDATE SET {updates};\n"
    )


def staged_sql(stage: str) -> str:
    """Statements (no parameters) that account for every row in ``stage``."""
    return "".join(_spend_sql(t, stage) for t in SPEND_TARGETS) + _rollup_sql(stage)


# --- Any database: aggregated here, applied through the ORM ------------------------------------


@dataclass(slots=True)
class Deltas:
    spend: dict[int, dict[Any, Decimal]]  # SPEND_TARGETS index -> ref -> amount
    rollups: dict[tuple[date, str, str, str], list[Any]]


def aggregate(rows: list[Row]) -> Deltas:
    spend: dict[int, dict[Any, Decimal]] = {
        i: defaultdict(Decimal) for i in range(len(SPEND_TARGETS))
    }
    rollups: dict[tuple[date, str, str, str], list[Any]] = {}
    for row in rows:
        cost = row.get("cost") or Decimal(0)
        if cost > 0:
            for i, target in enumerate(SPEND_TARGETS):
                ref = row.get(target.field)
                if ref is not None and ref != "":
                    spend[i][ref] += cost
        day = row["start_time"].astimezone(UTC).date()
        group = row.get("model_group") or ""
        values = [
            1,
            1 if row.get("status_code", 200) >= 400 else 0,
            *(row.get(c) or 0 for c in _COUNTERS),
            cost,
        ]
        for kind, column in ROLLUP_KINDS:
            entity = row.get(column)
            if entity is None or (entity == "" and kind != DailyUsage.Kind.MODEL_GROUP):
                continue
            key = (day, str(kind), str(entity), group)
            total = rollups.get(key)
            if total is None:
                rollups[key] = list(values)
            else:
                for i, v in enumerate(values):
                    total[i] += v
    return Deltas(spend=spend, rollups=rollups)


def apply(rows: list[Row]) -> None:
    """Account for ``rows`` through the ORM, in the fixed order (inside the caller's
    transaction)."""
    deltas = aggregate(rows)
    for i, target in enumerate(SPEND_TARGETS):
        manager = target.model._default_manager
        for ref in sorted(deltas.spend[i]):
            manager.filter(**{target.lookup: ref}).update(spend=F("spend") + deltas.spend[i][ref])
    names = ("requests", "errors", *_COUNTERS, "cost")
    for (day, kind, entity, group), values in sorted(deltas.rollups.items()):
        updated = DailyUsage.objects.filter(
            day=day, kind=kind, entity=entity, model_group=group
        ).update(**{n: F(n) + v for n, v in zip(names, values, strict=True)})
        if not updated:
            DailyUsage.objects.create(
                day=day,
                kind=kind,
                entity=entity,
                model_group=group,
                **dict(zip(names, values, strict=True)),
            )
