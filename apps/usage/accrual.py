"""Spend and daily rollups from newly written usage rows, aggregated per flush.

Every holder of spend (key, team, organization, internal user, team membership, end user) is
updated once per flush with the flush's total and its per-model split (``model_spend``), tables
in a fixed order and rows locked in id order, so concurrent writers (workers, instances) queue
behind each other instead of deadlocking. PostgreSQL does the aggregation itself from the
staging table the rows were copied into (no Python work per row); other databases aggregate
here.
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
from apps.teams.models import EndUser, GatewayUser, Organization, Team, TeamMembership
from apps.usage.models import DailyUsage

Row = dict[str, Any]


@dataclass(frozen=True, slots=True)
class SpendTarget:
    """A table holding ``spend`` and ``model_spend``, found from a usage row's ``fields``.

    ``lookups`` name the matching columns; a ``user`` lookup goes through the internal user's
    ``user_id`` (the row holds that, not the user's primary key)."""

    model: type[models.Model]
    fields: tuple[str, ...]
    lookups: tuple[str, ...] = ("id",)


# The fixed order in which spend holders are locked and updated.
SPEND_TARGETS: tuple[SpendTarget, ...] = (
    SpendTarget(VirtualKey, ("key_id",)),
    SpendTarget(Team, ("team_id",)),
    SpendTarget(Organization, ("organization_id",)),
    SpendTarget(GatewayUser, ("user_id",), ("user_id",)),
    SpendTarget(TeamMembership, ("team_id", "user_id"), ("team", "user")),
    SpendTarget(EndUser, ("end_user",), ("user_id",)),
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


def _column(model: type[models.Model], name: str) -> str:
    field = model._meta.get_field(name)
    assert isinstance(field, models.Field)
    return connection.ops.quote_name(str(field.column))


def _spend_sql(target: SpendTarget, stage: str) -> str:
    """Lock the target's rows in id order, then add the flush's spend and per-model spend."""
    quote = connection.ops.quote_name
    table = quote(target.model._meta.db_table)
    users = quote(GatewayUser._meta.db_table)
    keep = " AND ".join(
        f"s.{quote(f)} IS NOT NULL AND s.{quote(f)}::text <> ''" for f in target.fields
    )
    # The staged rows, with each lookup's value: a ``user`` lookup is the user's primary key.
    source = f"{stage} AS s"
    values = []
    for field, lookup in zip(target.fields, target.lookups, strict=True):
        if lookup == "user":
            source += f" JOIN {users} AS u ON u.user_id = s.{quote(field)}"
            values.append("u.id")
        else:
            values.append(f"s.{quote(field)}")
    names = [f"r{i}" for i in range(len(values))]
    select = ", ".join(f"{v} AS {n}" for v, n in zip(values, names, strict=True))
    group = ", ".join(names)
    per_model = (
        f"SELECT {select}, s.model_group AS model, sum(s.cost) AS amount FROM {source} "  # noqa: S608
        f"WHERE {keep} AND s.cost > 0 GROUP BY {group}, s.model_group"
    )
    amounts = (
        f"SELECT {group}, sum(amount) AS amount, jsonb_object_agg(model, amount) "  # noqa: S608
        f"FILTER (WHERE model <> '') AS models FROM ({per_model}) AS m GROUP BY {group}"
    )
    match = " AND ".join(
        f"t.{_column(target.model, lookup)} = v.{n}"
        for lookup, n in zip(target.lookups, names, strict=True)
    )
    merged = (
        "COALESCE(t.model_spend, '{}'::jsonb) || COALESCE((SELECT jsonb_object_agg(d.key, "
        "COALESCE((t.model_spend ->> d.key)::numeric, 0) + d.value::numeric) "
        "FROM jsonb_each_text(v.models) AS d), '{}'::jsonb)"
    )
    return (
        f"SELECT 1 FROM {table} AS t, ({amounts}) AS v WHERE {match} "  # noqa: S608
        f"ORDER BY t.id FOR UPDATE OF t;\n"
        f"UPDATE {table} AS t SET spend = t.spend + v.amount, model_spend = {merged} "
        f"FROM ({amounts}) AS v WHERE {match};\n"
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
    # SPEND_TARGETS index -> ref (one value per field) -> model group ("" for all) -> amount
    spend: dict[int, dict[tuple[Any, ...], dict[str, Decimal]]]
    rollups: dict[tuple[date, str, str, str], list[Any]]


def aggregate(rows: list[Row]) -> Deltas:
    spend: dict[int, dict[tuple[Any, ...], dict[str, Decimal]]] = {
        i: defaultdict(lambda: defaultdict(Decimal)) for i in range(len(SPEND_TARGETS))
    }
    rollups: dict[tuple[date, str, str, str], list[Any]] = {}
    for row in rows:
        cost = row.get("cost") or Decimal(0)
        group = row.get("model_group") or ""
        if cost > 0:
            for i, target in enumerate(SPEND_TARGETS):
                ref = tuple(row.get(f) for f in target.fields)
                if all(v is not None and v != "" for v in ref):
                    per_model = spend[i][ref]
                    per_model[""] += cost
                    if group:
                        per_model[group] += cost
        day = row["start_time"].astimezone(UTC).date()
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


def _lookup(target: SpendTarget, ref: tuple[Any, ...]) -> dict[str, Any]:
    return {
        ("user__user_id" if lookup == "user" else lookup): value
        for lookup, value in zip(target.lookups, ref, strict=True)
    }


def _add_model_spend(current: Any, per_model: dict[str, Decimal]) -> dict[str, Any]:
    merged = dict(current) if isinstance(current, dict) else {}
    for model, amount in per_model.items():
        if model:
            merged[model] = float(Decimal(str(merged.get(model, 0))) + amount)
    return merged


def apply(rows: list[Row]) -> None:
    """Account for ``rows`` through the ORM, in the fixed order (inside the caller's
    transaction)."""
    deltas = aggregate(rows)
    for i, target in enumerate(SPEND_TARGETS):
        manager = target.model._default_manager
        for ref in sorted(deltas.spend[i], key=lambda r: tuple(str(v) for v in r)):
            per_model = deltas.spend[i][ref]
            for obj in manager.select_for_update().filter(**_lookup(target, ref)).order_by("pk"):
                current = getattr(obj, "model_spend", {})
                obj.spend = F("spend") + per_model[""]  # type: ignore[attr-defined]
                obj.model_spend = _add_model_spend(current, per_model)  # type: ignore[attr-defined]
                obj.save(update_fields=["spend", "model_spend"])
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


def ensure_end_users(rows: list[Row]) -> None:
    """End users (the ``user`` field of a call) get a row the first time they spend, as in
    LiteLLM, so their spend has a place to go.

    One ``INSERT ... ON CONFLICT DO NOTHING`` per batch, never skipped on a per-process memory
    of rows already made: an end user deleted through the management API (or by another
    process) and then seen again must get a row again, or its spend would silently go nowhere.
    """
    wanted = sorted({row["end_user"] for row in rows if row.get("end_user")})
    if wanted:
        EndUser.objects.bulk_create(
            [EndUser(user_id=user_id) for user_id in wanted], ignore_conflicts=True
        )
