"""Usage rows: built on the request path (no I/O), written by the batched writer."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson

from apps.keys.auth import Principal
from apps.providers.schemas import Usage
from apps.routing.selectors import Candidate
from apps.usage.pricing import cost_of, lookup
from apps.usage.writer import writer

_MAX_METADATA_BYTES = 16 * 1024
_MAX_ERROR_CHARS = 2000


def request_cost(candidate: Candidate | None, usage: Usage | None) -> Decimal:
    if candidate is None or usage is None:
        return Decimal(0)
    target = candidate.target
    prices = candidate.prices
    return cost_of(
        usage,
        lookup(target.provider, candidate.price_model or target.model),
        input_override=prices.input,
        output_override=prices.output,
        cache_read_override=prices.cache_read,
    )


def _text(value: str, limit: int) -> str:
    """``value`` cut to its column; NUL removed, since PostgreSQL text cannot hold it and one
    such row would fail every batch it is part of."""
    if "\x00" in value:
        value = value.replace("\x00", "")
    return value[:limit]


def _without_nul(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, list):
        return [_without_nul(v) for v in value]
    if isinstance(value, dict):
        return {_without_nul(k): _without_nul(v) for k, v in value.items()}
    return value


def _metadata(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        return {}
    raw = orjson.dumps(value)
    if len(raw) > _MAX_METADATA_BYTES:
        return {"_truncated": True}
    if b"\\u0000" in raw:  # jsonb rejects NUL in keys and strings alike
        return dict(_without_nul(value))
    return value


@dataclass(slots=True)
class UsageEvent:
    request_id: str
    call_type: str
    principal: Principal | None
    model_group: str
    start_time: datetime
    latency_ms: int
    status_code: int
    stream: bool = False
    candidate: Candidate | None = None
    usage: Usage | None = None
    cost: Decimal | None = None
    end_user: str = ""
    error_type: str = ""
    error_message: str = ""
    ttft_ms: int | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


def usage_record(event: UsageEvent) -> Decimal:
    """Queue the usage row of one request; returns its cost. Never blocks on the database."""
    usage = event.usage or Usage()
    cost = event.cost if event.cost is not None else request_cost(event.candidate, event.usage)
    principal = event.principal
    target = event.candidate.target if event.candidate is not None else None
    writer.record(
        {
            "request_id": event.request_id,
            "call_type": event.call_type,
            "key_id": principal.key_id if principal else None,
            "key_alias": principal.key_alias if principal else "",
            "team_id": principal.team_id if principal else None,
            "organization_id": principal.organization_id if principal else None,
            "user_id": principal.user_id if principal else "",
            "end_user": _text(event.end_user, 200),
            "model_group": _text(event.model_group, 255),
            "deployment_id": target.deployment_id if target else "",
            "provider": target.provider if target else "",
            "upstream_model": _text(target.model, 255) if target else "",
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
            "cached_tokens": usage.cached_tokens,
            "cache_creation_tokens": usage.cache_creation_tokens,
            "total_tokens": usage.total_tokens,
            "cost": cost,
            "status_code": event.status_code,
            "error_type": _text(event.error_type, 100),
            "error_message": _text(event.error_message, _MAX_ERROR_CHARS),
            "latency_ms": event.latency_ms,
            "ttft_ms": event.ttft_ms,
            "stream": event.stream,
            "metadata": _metadata(event.metadata),
            "start_time": event.start_time,
            "end_time": event.start_time + timedelta(milliseconds=event.latency_ms),
        }
    )
    return cost
