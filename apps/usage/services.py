"""Usage rows: built on the request path (no I/O), written by the batched writer."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson

from apps.core.conf import conf
from apps.keys.auth import Principal
from apps.providers.schemas import Usage
from apps.routing.selectors import Candidate
from apps.usage import callbacks
from apps.usage.pricing import cost_of, lookup
from apps.usage.redaction import stored_text
from apps.usage.writer import writer

access_logger = logging.getLogger("gateway.access")

_MAX_METADATA_BYTES = 16 * 1024
_MAX_ERROR_CHARS = 2000
# An upstream can report any token count; no request comes near 10^12 tokens, and the cap keeps
# rollup sums far inside their 64-bit columns.
MAX_TOKENS = 10**12
MAX_MS = 2**40
# Below the cost columns' 16 integer digits, whatever the token count and price.
MAX_COST = Decimal(10) ** 15


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


def clamp(value: Any, high: int) -> int:
    """``value`` as an int in ``[0, high]``; anything else is 0."""
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        return 0
    return min(value, high)


def clamp_cost(value: Decimal) -> Decimal:
    if not value.is_finite() or value <= 0:
        return Decimal(0)
    return min(value, MAX_COST)


def _metadata(given: Any) -> dict[str, Any]:
    if not isinstance(given, dict):
        return {}
    value: dict[str, Any] = given
    try:
        raw = orjson.dumps(value)
    except TypeError:  # an integer past 64 bits, say: kept, as JSON numbers or text
        value = json.loads(json.dumps(value, default=str))
        raw = json.dumps(value).encode()
    if len(raw) > _MAX_METADATA_BYTES:
        return {"_truncated": True}
    if b"\\u0000" in raw:  # jsonb rejects NUL in keys and strings alike
        cleaned: dict[str, Any] = _without_nul(value)
        return cleaned
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
    response_id: str = ""
    # Stored only when enabled for the call (see ``stores_bodies``); redacted here.
    request_body: Any = None
    response_body: bytes | None = None
    retries: int = 0
    fallbacks: int = 0
    fallback_from: str = ""


def stores_bodies(principal: Principal | None) -> bool:
    """Whether a call's request and response are kept on its usage row: everywhere
    (``GATEWAY_STORE_PROMPTS``) or for a key whose metadata says
    ``store_prompts_in_spend_logs: true``."""
    if conf.GATEWAY_STORE_PROMPTS:
        return True
    return principal is not None and principal.metadata.get("store_prompts_in_spend_logs") is True


def _stored(value: Any) -> str:
    if value is None:
        return ""
    return stored_text(value, conf.GATEWAY_STORED_BODY_BYTES)


def usage_record(event: UsageEvent) -> Decimal:
    """Queue the usage row of one request; returns its cost. Never blocks on the database.

    Every value is made to fit its column here, whatever the upstream reported: one row the
    database refuses would otherwise cost a split of its whole batch."""
    usage = event.usage or Usage()
    cost = event.cost if event.cost is not None else request_cost(event.candidate, event.usage)
    cost = clamp_cost(cost)
    principal = event.principal
    target = event.candidate.target if event.candidate is not None else None
    prompt = clamp(usage.prompt_tokens, MAX_TOKENS)
    completion = clamp(usage.completion_tokens, MAX_TOKENS)
    latency = clamp(event.latency_ms, MAX_MS)
    row = {
        "request_id": _text(event.request_id, 64),
        "response_id": _text(event.response_id, 255),
        "call_type": _text(event.call_type, 30),
        "key_id": principal.key_id if principal else None,
        "key_alias": _text(principal.key_alias, 200) if principal else "",
        "team_id": principal.team_id if principal else None,
        "organization_id": principal.organization_id if principal else None,
        "user_id": _text(principal.user_id, 200) if principal else "",
        "end_user": _text(event.end_user, 200),
        "model_group": _text(event.model_group, 255),
        "deployment_id": _text(target.deployment_id, 100) if target else "",
        "provider": _text(target.provider, 50) if target else "",
        "upstream_model": _text(target.model, 255) if target else "",
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "cached_tokens": clamp(usage.cached_tokens, MAX_TOKENS),
        "cache_creation_tokens": clamp(usage.cache_creation_tokens, MAX_TOKENS),
        "reasoning_tokens": clamp(usage.reasoning_tokens, MAX_TOKENS),
        "total_tokens": prompt + completion,
        "cost": cost,
        "status_code": min(max(event.status_code, 0), 999),
        "error_type": _text(event.error_type, 100),
        "error_message": _text(event.error_message, _MAX_ERROR_CHARS),
        "latency_ms": latency,
        "ttft_ms": clamp(event.ttft_ms, MAX_MS) if event.ttft_ms is not None else None,
        "stream": event.stream,
        "metadata": _metadata(event.metadata),
        "retries": min(event.retries, 32767),
        "fallbacks": min(event.fallbacks, 32767),
        "fallback_from": _text(event.fallback_from, 255),
        "start_time": event.start_time,
        "end_time": event.start_time + timedelta(milliseconds=latency),
        "request_body": _stored(event.request_body),
        "response_body": _stored(event.response_body),
    }
    writer.record(row)
    callbacks.dispatcher.offer(row)
    if conf.GATEWAY_ACCESS_LOG:
        _access(row)
    return cost


def _access(row: dict[str, Any]) -> None:
    """One line per call: who, what, how it ended, how long, what it cost (never a secret)."""
    access_logger.info(
        "%s %s %s %d %dms",
        row["call_type"],
        row["model_group"] or "-",
        row["key_alias"] or (row["key_id"] or "-"),
        row["status_code"],
        row["latency_ms"],
        extra={
            "request_id": row["request_id"],
            "call_type": row["call_type"],
            "model_group": row["model_group"],
            "deployment_id": row["deployment_id"],
            "key_id": row["key_id"],
            "key_alias": row["key_alias"],
            "team_id": row["team_id"],
            "status_code": row["status_code"],
            "latency_ms": row["latency_ms"],
            "ttft_ms": row["ttft_ms"],
            "prompt_tokens": row["prompt_tokens"],
            "completion_tokens": row["completion_tokens"],
            "cost": str(row["cost"]),
            "error_type": row["error_type"],
        },
    )
