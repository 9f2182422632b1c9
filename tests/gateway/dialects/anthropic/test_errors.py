"""Gateway errors as Anthropic error bodies: the type the API documents for each status
(https://docs.anthropic.com/en/api/errors)."""

from __future__ import annotations

import pytest

from apps.gateway.dialects.anthropic.errors import anthropic_error_body


@pytest.mark.parametrize(
    ("status", "error_type"),
    [
        (400, "invalid_request_error"),
        (401, "authentication_error"),
        (402, "billing_error"),
        (403, "permission_error"),
        (404, "not_found_error"),
        (413, "request_too_large"),
        (422, "invalid_request_error"),
        (429, "rate_limit_error"),
        (500, "api_error"),
        (502, "api_error"),
        (503, "overloaded_error"),
        (504, "timeout_error"),
        (529, "overloaded_error"),
    ],
)
def test_error_body(status: int, error_type: str) -> None:
    body = anthropic_error_body(status, "Something failed")
    assert body == {"type": "error", "error": {"type": error_type, "message": "Something failed"}}
