"""Anthropic error responses -> UpstreamError (https://docs.anthropic.com/en/api/errors)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest

from apps.providers.anthropic import AnthropicProvider

FIXTURES = Path(__file__).parent.parent / "fixtures" / "providers" / "anthropic"
CASES = json.loads((FIXTURES / "errors.json").read_text())["cases"]


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c['status']}-{c['expect']['code']}")
def test_error_mapping(case: dict[str, Any]) -> None:
    body = orjson.dumps(case["body"])
    err = AnthropicProvider().parse_error(case["status"], body, case["headers"])
    expect = case["expect"]
    assert err.http_status == expect["http_status"]
    assert err.upstream_status == case["status"]
    assert err.code == expect["code"]
    assert err.retryable is expect["retryable"]
    assert err.message == "anthropic error: " + case["body"]["error"]["message"]
    if "retry_after" in expect:
        assert err.headers == {"retry-after": expect["retry_after"]}
    else:
        assert "retry-after" not in err.headers


def test_openai_error_types_follow_the_client_status() -> None:
    provider = AnthropicProvider()
    by_status = {c["status"]: c for c in CASES}
    types = {
        status: provider.parse_error(status, orjson.dumps(by_status[status]["body"]), {}).type
        for status in (401, 403, 429, 529)
    }
    assert types == {
        401: "invalid_request_error",
        403: "permission_error",
        429: "rate_limit_error",
        529: "api_error",
    }


def test_retry_after_header_any_case() -> None:
    body = orjson.dumps({"type": "error", "error": {"type": "rate_limit_error", "message": "x"}})
    err = AnthropicProvider().parse_error(429, body, {"Retry-After": "3"})
    assert err.headers == {"retry-after": "3"}


@pytest.mark.parametrize(
    ("status", "body", "http_status", "message"),
    [
        (502, b"<html>Bad gateway</html>", 502, "anthropic error: <html>Bad gateway</html>"),
        (503, b"", 503, "anthropic error: HTTP 503"),
        (400, b'{"error": "plain"}', 400, "anthropic error: plain"),
        (408, b"{}", 408, "anthropic error: {}"),
    ],
)
def test_non_standard_bodies(status: int, body: bytes, http_status: int, message: str) -> None:
    err = AnthropicProvider().parse_error(status, body, {})
    assert err.http_status == http_status
    assert err.message == message


def test_messages_never_carry_the_api_key() -> None:
    body = orjson.dumps(
        {"type": "error", "error": {"type": "authentication_error", "message": "invalid x-api-key"}}
    )
    err = AnthropicProvider().parse_error(401, body, {"x-api-key": "sk-ant-secret"})
    assert "sk-ant-secret" not in err.message
    assert "sk-ant-secret" not in str(err.to_openai())
