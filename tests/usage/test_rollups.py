"""Daily rollups are kept in step with the rows: for every dimension, their sums equal the raw
rows' sums; and the database-side aggregation equals the portable one."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import transaction
from django.db.models import Count, Q, Sum

from apps.keys.models import VirtualKey
from apps.keys.services import key_issue
from apps.teams.models import Organization, Team
from apps.usage import accrual
from apps.usage.models import DailyUsage, UsageLog
from apps.usage.store import write_rows
from tests.usage.rows import full_row

pytestmark = pytest.mark.django_db(transaction=True)

DIMENSIONS = {
    "key": "key_id",
    "team": "team_id",
    "organization": "organization_id",
    "user": "user_id",
    "end_user": "end_user",
    "model_group": "model_group",
    "deployment": "deployment_id",
}


def _mixed_rows(keys, teams, orgs):
    rng = random.Random(7)
    base = datetime(2026, 11, 30, 22, tzinfo=UTC)
    rows = []
    for n in range(300):
        team = rng.choice([None, *teams])
        rows.append(
            full_row(
                n,
                start=base + timedelta(minutes=7 * n),  # spans several days
                key_id=rng.choice(keys),
                team_id=team,
                organization_id=rng.choice([None, *orgs]) if team else None,
                user_id=rng.choice(["", "alice", "bob"]),
                end_user=rng.choice(["", "cust-1", "cust-2"]),
                model_group=rng.choice(["gpt", "claude", ""]),
                deployment_id=rng.choice(["", "d1", "d2"]),
                prompt_tokens=rng.randrange(0, 5000),
                completion_tokens=rng.randrange(0, 900),
                cached_tokens=rng.randrange(0, 50),
                status_code=rng.choice([200, 200, 200, 429, 500]),
                cost=Decimal(rng.randrange(0, 10**6)) / 10**8,
            )
        )
    return rows


def _expected(field: str) -> dict[tuple[str, str], tuple[int, int, int, Decimal]]:
    qs = UsageLog.objects.all()
    if field.endswith("_id") and field not in ("user_id", "deployment_id"):
        qs = qs.exclude(**{f"{field}__isnull": True})
    elif field != "model_group":
        qs = qs.exclude(**{field: ""})
    out = {}
    for row in qs.values(field, "model_group").annotate(
        n=Count("id"),
        errors=Count("id", filter=Q(status_code__gte=400)),
        prompt=Sum("prompt_tokens"),
        cost=Sum("cost"),
    ):
        out[(str(row[field]), row["model_group"])] = (
            row["n"],
            row["errors"],
            row["prompt"],
            row["cost"],
        )
    return out


def _rolled(kind: str) -> dict[tuple[str, str], tuple[int, int, int, Decimal]]:
    out = {}
    for row in (
        DailyUsage.objects.filter(kind=kind)
        .values("entity", "model_group")
        .annotate(
            n=Sum("requests"),
            errors=Sum("errors"),
            prompt=Sum("prompt_tokens"),
            cost=Sum("cost"),
        )
    ):
        out[(row["entity"], row["model_group"])] = (
            row["n"],
            row["errors"],
            row["prompt"],
            row["cost"],
        )
    return out


def _setup():
    org = Organization.objects.create()
    teams = [Team.objects.create(team_alias=f"t{i}", organization=org).pk for i in range(2)]
    keys = [key_issue()[0].pk for _ in range(3)]
    return keys, teams, [org.pk]


def test_rollups_equal_the_raw_sums_for_every_dimension():
    keys, teams, orgs = _setup()
    rows = _mixed_rows(keys, teams, orgs)
    for start in range(0, len(rows), 37):  # several flushes, days crossing flush boundaries
        write_rows(rows[start : start + 37])
    for kind, field in DIMENSIONS.items():
        assert _rolled(kind) == _expected(field), kind
    # Days are UTC days of start_time.
    days = set(DailyUsage.objects.values_list("day", flat=True))
    assert min(days).isoformat() == "2026-11-30" and len(days) == 3
    assert sum(VirtualKey.objects.values_list("spend", flat=True)) == sum(r["cost"] for r in rows)


def test_the_portable_aggregation_equals_the_database_one():
    keys, teams, orgs = _setup()
    rows = _mixed_rows(keys, teams, orgs)
    write_rows(rows)
    by_sql = sorted(
        DailyUsage.objects.values_list(
            "day",
            "kind",
            "entity",
            "model_group",
            "requests",
            "errors",
            "prompt_tokens",
            "completion_tokens",
            "cached_tokens",
            "total_tokens",
            "cost",
        )
    )
    spend_sql = sorted(Team.objects.values_list("pk", "spend"))
    DailyUsage.objects.all().delete()
    Team.objects.update(spend=0)
    with transaction.atomic():
        accrual.apply(rows)
    assert (
        sorted(
            DailyUsage.objects.values_list(
                "day",
                "kind",
                "entity",
                "model_group",
                "requests",
                "errors",
                "prompt_tokens",
                "completion_tokens",
                "cached_tokens",
                "total_tokens",
                "cost",
            )
        )
        == by_sql
    )
    assert sorted(Team.objects.values_list("pk", "spend")) == spend_sql
