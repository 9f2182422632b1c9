"""Helpers shared by the end-to-end gateway tests."""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import orjson
import pytest

from apps.usage.models import UsageLog

# End-to-end tests own the database and truncate only the gateway's apps afterwards: the
# truncation of every table (and the content types re-created after it) doubles their run time.
GATEWAY_APPS = ["apps.core", "apps.teams", "apps.keys", "apps.routing", "apps.usage"]
# (The leak guard comes with the gateway_server fixture every end-to-end test uses.)
E2E = [pytest.mark.django_db(transaction=True, available_apps=GATEWAY_APPS)]

# gpt-4o-mini in apps/usage/data/model_prices.json: USD per million input / output tokens.
GPT_4O_MINI_INPUT = Decimal("0.15") / 1_000_000
GPT_4O_MINI_OUTPUT = Decimal("0.60") / 1_000_000
CHAT = "/v1/chat/completions"
HELLO = [{"role": "user", "content": "hello there world"}]


def gpt_4o_mini_cost(prompt_tokens: int, completion_tokens: int) -> Decimal:
    return prompt_tokens * GPT_4O_MINI_INPUT + completion_tokens * GPT_4O_MINI_OUTPUT


def wait_until(predicate: Callable[[], Any], timeout: float = 5.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def usage_rows(gateway: Any, count: int, timeout: float = 5.0) -> list[UsageLog]:
    """Exactly ``count`` usage rows (fails on more or fewer), counted once the gateway has
    finished every request it was handling and written their rows."""

    def settled() -> bool:
        if gateway.busy():
            return False
        gateway.flush_usage()
        return UsageLog.objects.count() >= count

    wait_until(settled, timeout, f"{count} usage rows")
    rows = list(UsageLog.objects.order_by("id"))
    assert len(rows) == count, [(r.status_code, r.error_type) for r in rows]
    return rows


def sse_data(raw: bytes) -> list[bytes]:
    """The ``data:`` payloads of an SSE body, in order."""
    out = []
    for event in raw.replace(b"\r\n", b"\n").split(b"\n\n"):
        lines = [line[5:].lstrip() for line in event.split(b"\n") if line.startswith(b"data:")]
        if lines:
            out.append(b"\n".join(lines))
    return out


def sse_json(raw: bytes) -> list[Any]:
    """The JSON chunks of an SSE body, without the final ``[DONE]``."""
    return [orjson.loads(data) for data in sse_data(raw) if data != b"[DONE]"]


def openai_error(response: Any) -> dict[str, Any]:
    """The ``error`` object of an OpenAI-shaped error response, checking the shape."""
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == {"message", "type", "param", "code"}, error
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["type"], str) and error["type"]
    return error
