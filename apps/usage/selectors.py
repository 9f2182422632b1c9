"""Reading spend: the usage log and the daily rollups, always through a :class:`Scope` (what the
caller may see), never the raw table for totals."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.db.models import Q, QuerySet, Sum

from apps.usage.models import DailyUsage, UsageLog


@dataclass(frozen=True, slots=True)
class Scope:
    """Everything (``everything``), or the rows of these keys and these teams."""

    everything: bool = False
    key_ids: frozenset[int] = frozenset()
    team_ids: frozenset[int] = frozenset()


def logs_for(
    *,
    scope: Scope,
    key_id: int | None = None,
    request_id: str = "",
    user_id: str = "",
    team_id: int | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    tags: list[str] | None = None,
) -> QuerySet[UsageLog]:
    """Usage rows the scope may see, newest first. ``request_id`` matches the gateway's id or
    the answer's own (``chatcmpl-…``)."""
    qs = UsageLog.objects.all()
    if not scope.everything:
        qs = qs.filter(Q(key_id__in=scope.key_ids) | Q(team_id__in=scope.team_ids))
    if key_id is not None:
        qs = qs.filter(key_id=key_id)
    if request_id:
        qs = qs.filter(Q(request_id=request_id) | Q(response_id=request_id))
    if user_id:
        qs = qs.filter(user_id=user_id)
    if team_id is not None:
        qs = qs.filter(team_id=team_id)
    if start is not None:
        qs = qs.filter(start_time__gte=start)
    if end is not None:
        qs = qs.filter(start_time__lt=end)
    for tag in tags or []:
        qs = qs.filter(metadata__tags__contains=[tag])
    return qs.order_by("-start_time", "-id")


def _entities(scope: Scope, kind: str) -> set[str] | None:
    """The rollup entities of ``kind`` the scope may see; None for all."""
    if scope.everything:
        return None
    if kind == DailyUsage.Kind.KEY:
        return {str(pk) for pk in scope.key_ids}
    if kind == DailyUsage.Kind.TEAM:
        return {str(pk) for pk in scope.team_ids}
    return set()


def daily(
    *, scope: Scope, kind: str, start: date | None = None, end: date | None = None
) -> QuerySet[DailyUsage]:
    """Rollup rows of one kind in ``[start, end]`` (days, inclusive) the scope may see."""
    qs = DailyUsage.objects.filter(kind=kind)
    entities = _entities(scope, kind)
    if entities is not None:
        qs = qs.filter(entity__in=entities)
    if start is not None:
        qs = qs.filter(day__gte=start)
    if end is not None:
        qs = qs.filter(day__lte=end)
    return qs


def totals_by_entity(
    *, scope: Scope, kind: str, start: date | None = None, end: date | None = None
) -> list[dict[str, Any]]:
    """Spend, tokens and requests per entity of ``kind``, largest spend first."""
    rows = (
        daily(scope=scope, kind=kind, start=start, end=end)
        .values("entity")
        .annotate(
            spend=Sum("cost"),
            requests=Sum("requests"),
            prompt_tokens=Sum("prompt_tokens"),
            completion_tokens=Sum("completion_tokens"),
            total_tokens=Sum("total_tokens"),
        )
        .order_by("-spend", "entity")
    )
    return [dict(row) for row in rows]


def report(
    *, scope: Scope, kind: str, start: date | None = None, end: date | None = None
) -> list[tuple[date, str, Decimal, list[dict[str, Any]]]]:
    """(day, entity, spend, per model group [{model, spend, total_tokens, ...}]) for every day
    and entity, oldest day first, largest spend first within a day."""
    per: dict[tuple[date, str], list[dict[str, Any]]] = defaultdict(list)
    for row in daily(scope=scope, kind=kind, start=start, end=end).order_by("day", "entity"):
        per[(row.day, row.entity)].append(
            {
                "model": row.model_group,
                "spend": row.cost,
                "total_tokens": row.total_tokens,
                "prompt_tokens": row.prompt_tokens,
                "completion_tokens": row.completion_tokens,
                "requests": row.requests,
            }
        )
    out = [
        (day, entity, sum((m["spend"] for m in models), Decimal(0)), models)
        for (day, entity), models in per.items()
    ]
    out.sort(key=lambda item: (item[0], -item[2], item[1]))
    return out
