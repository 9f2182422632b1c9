"""Spend rows in LiteLLM's shapes. Keys appear by their token (the digest ``/key/info`` gives),
teams by ``team_id``: never a key itself."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import date
from decimal import Decimal
from typing import Any

import orjson

from apps.keys.models import VirtualKey
from apps.teams.models import Team
from apps.usage.models import DailyUsage, UsageLog


def _tokens(key_ids: set[int]) -> dict[int, str]:
    return dict(VirtualKey.objects.filter(pk__in=key_ids).values_list("pk", "digest"))


def team_names(team_pks: set[int]) -> dict[str, str]:
    """Rollup entity (team pk as text) -> the team's ``team_id``."""
    return {
        str(pk): tid
        for pk, tid in Team.objects.filter(pk__in=team_pks).values_list("pk", "team_id")
    }


def _team_ids(team_pks: set[int]) -> dict[int, str]:
    return dict(Team.objects.filter(pk__in=team_pks).values_list("pk", "team_id"))


def _parsed(text: str) -> Any:
    """A stored body (redacted JSON text, possibly cut short) as JSON, else as text."""
    if not text:
        return None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return text


def _status(row: UsageLog) -> str:
    return "failure" if row.status_code >= 400 else "success"


def log_rows(rows: list[UsageLog]) -> list[dict[str, Any]]:
    tokens = _tokens({r.key_id for r in rows if r.key_id is not None})
    teams = _team_ids({r.team_id for r in rows if r.team_id is not None})
    out = []
    for row in rows:
        metadata = row.metadata if isinstance(row.metadata, dict) else {}
        out.append(
            {
                "request_id": row.request_id,
                "response_id": row.response_id or None,
                "call_type": row.call_type,
                "api_key": tokens.get(row.key_id, "") if row.key_id is not None else "",
                "key_alias": row.key_alias or None,
                "spend": float(row.cost),
                "total_tokens": row.total_tokens,
                "prompt_tokens": row.prompt_tokens,
                "completion_tokens": row.completion_tokens,
                "startTime": row.start_time.isoformat(),
                "endTime": row.end_time.isoformat(),
                "completionStartTime": None,
                "model": row.upstream_model,
                "model_id": row.deployment_id or None,
                "model_group": row.model_group,
                "custom_llm_provider": row.provider,
                "api_base": "",
                "user": row.user_id,
                "end_user": row.end_user,
                "team_id": teams.get(row.team_id) if row.team_id is not None else None,
                "metadata": {
                    **metadata,
                    "status": _status(row),
                    "error_type": row.error_type or None,
                    "error_message": row.error_message or None,
                    "latency_ms": row.latency_ms,
                    "time_to_first_token_ms": row.ttft_ms,
                },
                "request_tags": metadata.get("tags") or [],
                "cache_hit": "False",
                "cache_key": None,
                "status": _status(row),
                "requester_ip_address": None,
                "messages": _parsed(row.request_body),
                "response": _parsed(row.response_body),
            }
        )
    return out


CSV_COLUMNS = [
    "request_id",
    "response_id",
    "start_time",
    "end_time",
    "call_type",
    "status_code",
    "api_key",
    "key_alias",
    "team_id",
    "user",
    "end_user",
    "model_group",
    "model",
    "model_id",
    "provider",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "cached_tokens",
    "spend",
    "latency_ms",
    "ttft_ms",
    "error_type",
]


def csv_rows(rows: Iterable[UsageLog], chunk: int = 2000) -> Iterator[list[Any]]:
    """CSV lines, looking key tokens and team ids up a chunk of rows at a time."""
    batch: list[UsageLog] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= chunk:
            yield from _csv_batch(batch)
            batch = []
    yield from _csv_batch(batch)


def _csv_batch(rows: list[UsageLog]) -> Iterator[list[Any]]:
    tokens = _tokens({r.key_id for r in rows if r.key_id is not None})
    teams = _team_ids({r.team_id for r in rows if r.team_id is not None})
    for r in rows:
        yield [
            r.request_id,
            r.response_id,
            r.start_time.isoformat(),
            r.end_time.isoformat(),
            r.call_type,
            r.status_code,
            tokens.get(r.key_id, "") if r.key_id is not None else "",
            r.key_alias,
            teams.get(r.team_id, "") if r.team_id is not None else "",
            r.user_id,
            r.end_user,
            r.model_group,
            r.upstream_model,
            r.deployment_id,
            r.provider,
            r.prompt_tokens,
            r.completion_tokens,
            r.total_tokens,
            r.cached_tokens,
            format(r.cost.normalize(), "f"),
            r.latency_ms,
            "" if r.ttft_ms is None else r.ttft_ms,
            r.error_type,
        ]


def report(
    entries: list[tuple[date, str, Decimal, list[dict[str, Any]]]], *, kind: str, field: str
) -> list[dict[str, Any]]:
    """``[{group_by_day, <field>: [{<name>, total_spend, metadata: [per model]}]}]``."""
    names: dict[str, str] = {}
    if kind == DailyUsage.Kind.TEAM:
        names = team_names({int(e[1]) for e in entries})
    elif kind == DailyUsage.Kind.KEY:
        names = {str(k): v for k, v in _tokens({int(e[1]) for e in entries}).items()}
    label = {
        DailyUsage.Kind.TEAM: "team_name",
        DailyUsage.Kind.KEY: "api_key",
        DailyUsage.Kind.END_USER: "customer",
        DailyUsage.Kind.MODEL_GROUP: "model",
    }[DailyUsage.Kind(kind)]
    days: dict[date, list[dict[str, Any]]] = {}
    for day, entity, spend, models in entries:
        days.setdefault(day, []).append(
            {
                label: names.get(entity, entity),
                "total_spend": float(spend),
                "metadata": [
                    {
                        "model": m["model"],
                        "spend": float(m["spend"]),
                        "total_tokens": m["total_tokens"],
                        "prompt_tokens": m["prompt_tokens"],
                        "completion_tokens": m["completion_tokens"],
                        "requests": m["requests"],
                    }
                    for m in sorted(models, key=lambda m: -m["spend"])
                ],
            }
        )
    return [{"group_by_day": day.isoformat(), field: items} for day, items in sorted(days.items())]
