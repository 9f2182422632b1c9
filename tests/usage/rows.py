"""Usage rows as the gateway queues them, for the writer's tests."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.utils import timezone


def full_row(n: int, start: datetime | None = None, **fields: Any) -> dict[str, Any]:
    """Every field present, as ``usage_record`` builds it."""
    start = start or timezone.now()
    row: dict[str, Any] = {
        "request_id": f"req-{n}",
        "response_id": f"chatcmpl-{n}",
        "call_type": "chat_completions",
        "key_id": None,
        "key_alias": "",
        "team_id": None,
        "organization_id": None,
        "user_id": "",
        "end_user": "",
        "model_group": "gpt",
        "deployment_id": "",
        "provider": "openai",
        "upstream_model": "gpt-4o-mini",
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "cached_tokens": 0,
        "cache_creation_tokens": 0,
        "reasoning_tokens": 0,
        "total_tokens": 15,
        "cost": Decimal("0.001"),
        "status_code": 200,
        "error_type": "",
        "error_message": "",
        "latency_ms": 20,
        "ttft_ms": None,
        "stream": False,
        "metadata": {},
        "start_time": start,
        "end_time": start + timedelta(milliseconds=20),
    }
    row.update(fields)
    return row
