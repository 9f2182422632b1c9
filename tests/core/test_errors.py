"""The error hierarchy: statuses, OpenAI types and codes, and the rendered shape.

Shape and types: https://platform.openai.com/docs/guides/error-codes
"""

from __future__ import annotations

import pytest

from apps.core import errors


@pytest.mark.parametrize(
    ("cls", "status", "kind", "code"),
    [
        (errors.InvalidRequest, 400, "invalid_request_error", "invalid_request"),
        (errors.AuthenticationError, 401, "invalid_request_error", "invalid_api_key"),
        (errors.PermissionDenied, 403, "permission_error", "model_not_allowed"),
        (errors.ModelNotFound, 404, "invalid_request_error", "model_not_found"),
        (errors.MethodNotAllowed, 405, "invalid_request_error", "method_not_allowed"),
        (errors.RateLimited, 429, "rate_limit_error", "rate_limit_exceeded"),
        (errors.UpstreamError, 502, "api_error", "upstream_error"),
        (errors.UpstreamTimeout, 504, "timeout", "upstream_timeout"),
        (errors.UpstreamUnavailable, 502, "api_error", "upstream_unavailable"),
        (errors.ServiceUnavailable, 503, "api_error", "service_unavailable"),
    ],
)
def test_class_defaults(cls, status, kind, code):
    err = cls("something went wrong", param="x")
    assert (err.http_status, err.type, err.code) == (status, kind, code)
    assert err.to_openai() == {
        "error": {"message": "something went wrong", "type": kind, "param": "x", "code": code}
    }
    assert isinstance(err, errors.GatewayError)


def test_instance_overrides_do_not_leak_to_the_class():
    err = errors.UpstreamError("x", http_status=429, code="rate_limit_exceeded", type="t")
    assert (err.http_status, err.code, err.type) == (429, "rate_limit_exceeded", "t")
    assert errors.UpstreamError("y").http_status == 502


@pytest.mark.parametrize(
    ("status", "retryable"),
    [(400, False), (401, False), (404, False), (408, True), (429, True), (500, True), (503, True)],
)
def test_upstream_error_is_retryable_by_status(status, retryable):
    assert errors.UpstreamError("x", http_status=status).retryable is retryable


def test_retryable_can_be_forced():
    assert errors.UpstreamError("x", http_status=503, retryable=False).retryable is False
    assert errors.UpstreamTimeout("x").retryable is True


def test_headers_are_copied():
    source = {"retry-after": "3"}
    err = errors.UpstreamError("x", http_status=429, headers=source)
    source["retry-after"] = "9"
    assert err.headers == {"retry-after": "3"}
