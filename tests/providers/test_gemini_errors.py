"""Google error responses -> UpstreamError with the status the OpenAI SDK expects."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from apps.providers.gemini import GeminiProvider, VertexAIProvider
from apps.providers.schemas import CanonicalRequest, Op, Target

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "providers" / "gemini"
CASES = orjson.loads((FIXTURES / "errors.json").read_bytes())


def case(name: str) -> tuple[int, bytes]:
    entry = CASES[name]
    return entry["http_status"], orjson.dumps(entry["body"])


@pytest.mark.parametrize(
    ("name", "status", "code", "retryable"),
    [
        ("api_key_invalid", 401, "invalid_api_key", False),
        ("invalid_argument", 400, "invalid_argument", False),
        ("context_too_long", 400, "context_length_exceeded", False),
        ("unauthenticated", 401, "invalid_api_key", False),
        ("permission_denied", 403, "permission_denied", False),
        ("not_found", 404, "not_found", False),
        ("resource_exhausted", 429, "rate_limit_exceeded", True),
        ("unavailable", 503, "unavailable", True),
        ("deadline_exceeded", 504, "deadline_exceeded", True),
        ("internal", 502, "internal", True),
        ("oauth_invalid_grant", 401, "invalid_grant", False),
    ],
)
def test_error_mapping(name: str, status: int, code: str, retryable: bool) -> None:
    upstream_status, body = case(name)
    error = GeminiProvider().parse_error(upstream_status, body, {})
    assert error.http_status == status
    assert error.upstream_status == upstream_status
    assert error.code == code
    assert error.retryable is retryable
    assert error.message.startswith("gemini error: ")


def test_message_is_google_message() -> None:
    error = GeminiProvider().parse_error(*case("not_found"), {})
    assert "models/gemini-9.9-ultra is not found" in error.message
    assert error.type == "invalid_request_error"


def test_rate_limit_keeps_retry_after_header() -> None:
    status, body = case("resource_exhausted")
    error = GeminiProvider().parse_error(status, body, {"Retry-After": "12"})
    assert error.headers["retry-after"] == "12"
    assert error.type == "rate_limit_error"


def test_rate_limit_retry_after_from_retry_info() -> None:
    error = GeminiProvider().parse_error(*case("resource_exhausted"), {})
    assert error.headers["retry-after"] == "37"


def test_vertex_prefixes_its_name() -> None:
    error = VertexAIProvider().parse_error(*case("permission_denied"), {})
    assert error.message.startswith("vertex_ai error: ")
    assert error.http_status == 403


@pytest.mark.parametrize(
    ("status", "expected"), [(500, 502), (502, 502), (503, 503), (504, 504), (429, 429), (418, 418)]
)
def test_non_json_bodies_fall_back_to_the_status(status: int, expected: int) -> None:
    error = GeminiProvider().parse_error(status, b"<html>upstream trouble</html>", {})
    assert error.http_status == expected
    assert "upstream trouble" in error.message


def test_empty_body() -> None:
    error = GeminiProvider().parse_error(500, b"", {})
    assert error.http_status == 502
    assert "HTTP 500" in error.message


def test_error_body_with_200_status_raises_from_parse_response() -> None:
    body = orjson.dumps(CASES["invalid_argument"]["body"])
    request = CanonicalRequest(op=Op.CHAT, body={"model": "g", "messages": []})
    target = Target(deployment_id="d", provider="gemini", model="m", api_key="k")
    with pytest.raises(Exception) as info:
        GeminiProvider().parse_response(request, target, body)
    assert getattr(info.value, "http_status", None) == 400
