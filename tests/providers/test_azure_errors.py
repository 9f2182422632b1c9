"""Azure OpenAI error responses -> the status and code the OpenAI SDK expects."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from apps.providers.azure import AzureOpenAIProvider, AzureTextProvider
from apps.providers.azure.errors import filtered_categories

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "providers" / "azure"
ERRORS: dict[str, Any] = orjson.loads((FIXTURES / "errors.json").read_bytes())
PROVIDER = AzureOpenAIProvider()


def parse(name: str) -> Any:
    case = ERRORS[name]
    return PROVIDER.parse_error(case["http_status"], orjson.dumps(case["body"]), case["headers"])


@pytest.mark.parametrize(
    ("name", "status", "code", "retryable"),
    [
        ("unauthorized", 401, "invalid_api_key", False),
        ("permission_denied", 403, "PermissionDenied", False),
        ("deployment_not_found", 404, "DeploymentNotFound", False),
        ("context_length", 400, "context_length_exceeded", False),
        ("timeout", 408, "Timeout", True),
        ("rate_limited", 429, "rate_limit_exceeded", True),
        ("server_error", 502, "InternalServerError", True),
        ("unavailable", 503, "ServiceUnavailable", True),
    ],
)
def test_status_mapping(name: str, status: int, code: str, retryable: bool) -> None:
    err = parse(name)
    assert err.http_status == status
    assert err.upstream_status == ERRORS[name]["http_status"]
    assert err.code == code
    assert err.retryable is retryable
    assert err.message == "azure error: " + ERRORS[name]["body"]["error"]["message"]


def test_types() -> None:
    assert parse("unauthorized").type == "invalid_request_error"
    assert parse("permission_denied").type == "permission_error"
    assert parse("rate_limited").type == "rate_limit_error"
    assert parse("context_length").param == "messages"


def test_rate_limit_keeps_retry_after() -> None:
    assert parse("rate_limited").headers == {"retry-after": "6", "retry-after-ms": "6000"}


def test_content_filter() -> None:
    err = parse("content_filter")
    assert err.http_status == 400
    assert err.upstream_status == 400
    assert err.type == "invalid_request_error"
    assert err.code == "content_policy_violation"
    assert err.param == "prompt"
    assert err.retryable is False
    assert err.message.startswith("azure error: The response was filtered due to the prompt")
    assert err.message.endswith("(content filter: jailbreak, violence (medium))")
    assert err.to_openai()["error"]["code"] == "content_policy_violation"


def test_content_filter_spec_spelling() -> None:
    err = parse("content_filter_spec_shape")
    assert err.code == "content_policy_violation"
    assert err.http_status == 400
    assert err.message.endswith("(content filter: hate (high), custom_blocklists)")


def test_content_filter_without_details() -> None:
    body = b'{"error": {"code": "content_filter", "message": "Filtered.", "param": "prompt"}}'
    err = PROVIDER.parse_error(400, body, {})
    assert err.code == "content_policy_violation"
    assert err.message == "azure error: Filtered."


@pytest.mark.parametrize(
    ("results", "expected"),
    [
        (None, []),
        ({}, []),
        ({"hate": {"filtered": False, "severity": "low"}}, []),
        ({"sexual": {"filtered": True, "severity": "safe"}}, ["sexual"]),
        ({"profanity": {"filtered": True, "detected": True}}, ["profanity"]),
        ({"custom_blocklists": [{"filtered": False, "id": "a"}]}, []),
    ],
)
def test_filtered_categories(results: Any, expected: list[str]) -> None:
    assert filtered_categories(results) == expected


def test_non_json_body() -> None:
    err = PROVIDER.parse_error(502, b"<html>Bad Gateway</html>", {})
    assert err.http_status == 502 and err.retryable
    assert "Bad Gateway" in err.message


def test_empty_body() -> None:
    err = PROVIDER.parse_error(500, b"", {})
    assert err.message == "azure error: HTTP 500"


def test_text_provider_names_itself() -> None:
    err = AzureTextProvider().parse_error(401, orjson.dumps(ERRORS["unauthorized"]["body"]), {})
    assert err.message.startswith("azure_text error: ")
    assert err.http_status == 401
