"""LiteLLM's spend routes: ``/spend/logs`` (JSON or CSV) and ``/global/spend/*``.

Every caller sees what the management API lets them see (:mod:`apps.teams.access`): a proxy
admin (or viewer) everything, anyone else the rows of the keys and teams they may read.
Totals come from the daily rollups, never from a scan of the usage rows.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import orjson
from django.http import StreamingHttpResponse
from drf_spectacular.utils import OpenApiParameter
from rest_framework import renderers
from rest_framework.decorators import api_view, permission_classes, renderer_classes
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from apps.core.api.schema import doc
from apps.keys import selectors as key_selectors
from apps.keys.models import VirtualKey
from apps.teams import access
from apps.teams.api.common import Forbidden, team_by_id
from apps.teams.api.permissions import IsActor, actor_of
from apps.usage import selectors
from apps.usage.api import serializers as s
from apps.usage.models import DailyUsage

TAGS = ["spend"]
MAX_LOGS = 1000


def scope_of(actor: access.Actor) -> selectors.Scope:
    if actor.is_proxy_viewer:
        return selectors.Scope(everything=True)
    keys = access.keys(actor, VirtualKey.objects.all()).values_list("pk", flat=True)
    teams = access.teams(actor).values_list("pk", flat=True)
    return selectors.Scope(key_ids=frozenset(keys), team_ids=frozenset(teams))


def _day(value: str | None, param: str) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        raise ValidationError({param: "Give a date as YYYY-MM-DD."}) from None


def _range(request: Request) -> tuple[date | None, date | None]:
    start = _day(request.query_params.get("start_date"), "start_date")
    end = _day(request.query_params.get("end_date"), "end_date")
    if start and end and end < start:
        raise ValidationError({"end_date": "end_date is before start_date."})
    return start, end


def _moment(day: date | None, *, after: bool = False) -> datetime | None:
    if day is None:
        return None
    if after:
        day += timedelta(days=1)
    return datetime.combine(day, time.min, tzinfo=UTC)


def _require_admin_view(actor: access.Actor) -> None:
    if not actor.is_proxy_viewer:
        raise Forbidden("Only a proxy admin may read spend across the whole proxy.")


LOG_PARAMS = [
    OpenApiParameter("api_key", str),
    OpenApiParameter("request_id", str),
    OpenApiParameter("user_id", str),
    OpenApiParameter("team_id", str),
    OpenApiParameter("start_date", str),
    OpenApiParameter("end_date", str),
    OpenApiParameter("tags", str, description="Comma-separated; rows carrying every tag."),
    OpenApiParameter("limit", int),
    OpenApiParameter("format", str, enum=["json", "csv"]),
]


class CSVRenderer(renderers.BaseRenderer):
    """Lets ``?format=csv`` through content negotiation; the view streams the CSV itself."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(
        self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None
    ) -> bytes:
        return orjson.dumps(data)


@doc(tags=TAGS, parameters=LOG_PARAMS)
@api_view(["GET"])
@renderer_classes([renderers.JSONRenderer, CSVRenderer])
@permission_classes([IsActor])
def spend_logs(request: Request) -> Response | StreamingHttpResponse:
    """Usage rows, newest first, in LiteLLM's shape; ``format=csv`` downloads the range."""
    actor = actor_of(request)
    params = request.query_params
    start, end = _range(request)
    key_id = None
    if params.get("api_key"):
        key = key_selectors.key_for_ref(params["api_key"])
        key_id = key.pk if key is not None else -1
    team_pk = None
    if params.get("team_id"):
        team_pk = team_by_id(params["team_id"]).pk
    try:
        limit = min(max(int(params.get("limit") or MAX_LOGS), 1), MAX_LOGS)
    except ValueError:
        raise ValidationError({"limit": "Give a number."}) from None
    rows = selectors.logs_for(
        scope=scope_of(actor),
        key_id=key_id,
        request_id=params.get("request_id") or "",
        user_id=params.get("user_id") or "",
        team_id=team_pk,
        start=_moment(start),
        end=_moment(end, after=True),
        tags=[t.strip() for t in (params.get("tags") or "").split(",") if t.strip()],
    )
    if request.accepted_renderer.format == "csv":
        return _csv(rows.iterator(chunk_size=2000))
    return Response(s.log_rows(list(rows[:limit])))


class _Echo:
    def write(self, value: str) -> str:
        return value


def _csv(rows: Iterator[Any]) -> StreamingHttpResponse:
    writer = csv.writer(_Echo())

    def lines() -> Iterator[str]:
        yield writer.writerow(s.CSV_COLUMNS)
        for chunk in s.csv_rows(rows):
            yield writer.writerow(chunk)

    response = StreamingHttpResponse(lines(), content_type="text/csv")
    response["Content-Disposition"] = 'attachment; filename="spend_logs.csv"'
    return response


REPORT_GROUPS = {
    "team": (DailyUsage.Kind.TEAM, "teams"),
    "api_key": (DailyUsage.Kind.KEY, "api_keys"),
    "customer": (DailyUsage.Kind.END_USER, "customers"),
    "model": (DailyUsage.Kind.MODEL_GROUP, "models"),
}


@doc(
    tags=TAGS,
    parameters=[
        OpenApiParameter("start_date", str),
        OpenApiParameter("end_date", str),
        OpenApiParameter("group_by", str, enum=list(REPORT_GROUPS)),
    ],
)
@api_view(["GET"])
@permission_classes([IsActor])
def global_spend_report(request: Request) -> Response:
    """Spend per day per team (or key, customer, model), with each one's models."""
    actor = actor_of(request)
    group_by = request.query_params.get("group_by") or "team"
    if group_by not in REPORT_GROUPS:
        raise ValidationError({"group_by": f"One of: {', '.join(REPORT_GROUPS)}."})
    kind, field = REPORT_GROUPS[group_by]
    if kind in (DailyUsage.Kind.END_USER, DailyUsage.Kind.MODEL_GROUP):
        _require_admin_view(actor)
    start, end = _range(request)
    entries = selectors.report(scope=scope_of(actor), kind=kind, start=start, end=end)
    return Response(s.report(entries, kind=kind, field=field))


@doc(tags=TAGS, parameters=[OpenApiParameter("limit", int)])
@api_view(["GET"])
@permission_classes([IsActor])
def global_spend_keys(request: Request) -> Response:
    """Keys by spend (the authoritative ``spend`` column), largest first."""
    actor = actor_of(request)
    try:
        limit = int(request.query_params.get("limit") or 10)
    except ValueError:
        raise ValidationError({"limit": "Give a number."}) from None
    keys = access.keys(actor, VirtualKey.objects.all()).order_by("-spend", "pk")[: max(limit, 1)]
    return Response(
        [
            {
                "api_key": key.digest,
                "key_alias": key.key_alias or None,
                "key_name": key.key_display,
                "total_spend": float(key.spend),
            }
            for key in keys
        ]
    )


@doc(tags=TAGS, parameters=[OpenApiParameter("limit", int)])
@api_view(["GET"])
@permission_classes([IsActor])
def global_spend_models(request: Request) -> Response:
    """Model groups by spend, largest first."""
    actor = actor_of(request)
    _require_admin_view(actor)
    try:
        limit = int(request.query_params.get("limit") or 10)
    except ValueError:
        raise ValidationError({"limit": "Give a number."}) from None
    totals = selectors.totals_by_entity(scope=scope_of(actor), kind=DailyUsage.Kind.MODEL_GROUP)
    return Response(
        [{"model": t["entity"], "total_spend": float(t["spend"])} for t in totals[: max(limit, 1)]]
    )


@doc(tags=TAGS, parameters=[OpenApiParameter("start_date", str), OpenApiParameter("end_date", str)])
@api_view(["GET"])
@permission_classes([IsActor])
def global_spend_teams(request: Request) -> Response:
    """Spend per team per day, and each team's total over the range."""
    actor = actor_of(request)
    start, end = _range(request)
    scope = scope_of(actor)
    names = s.team_names({int(t) for t in _team_entities(scope, start, end)})
    daily: dict[date, dict[str, float]] = {}
    for row in selectors.daily(scope=scope, kind=DailyUsage.Kind.TEAM, start=start, end=end):
        name = names.get(row.entity, row.entity)
        per_day = daily.setdefault(row.day, {})
        per_day[name] = per_day.get(name, 0.0) + float(row.cost)
    totals = selectors.totals_by_entity(
        scope=scope, kind=DailyUsage.Kind.TEAM, start=start, end=end
    )
    return Response(
        {
            "daily_spend": [
                {"date": day.isoformat(), **teams} for day, teams in sorted(daily.items())
            ],
            "teams": sorted({names.get(t["entity"], t["entity"]) for t in totals}),
            "total_spend_per_team": [
                {"team_id": names.get(t["entity"], t["entity"]), "total_spend": float(t["spend"])}
                for t in totals
            ],
        }
    )


def _team_entities(scope: selectors.Scope, start: date | None, end: date | None) -> set[str]:
    return set(
        selectors.daily(scope=scope, kind=DailyUsage.Kind.TEAM, start=start, end=end)
        .values_list("entity", flat=True)
        .distinct()
    )
