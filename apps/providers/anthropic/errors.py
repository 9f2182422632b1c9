"""Anthropic error responses and stream error events -> UpstreamError.

Error shapes and statuses: https://docs.anthropic.com/en/api/errors — the body is
``{"type": "error", "error": {"type": ..., "message": ...}, "request_id": ...}``; 400
invalid_request_error, 401 authentication_error, 402 billing_error, 403 permission_error,
404 not_found_error, 413 request_too_large, 429 rate_limit_error, 500 api_error,
504 timeout_error, 529 overloaded_error. In a stream the same object arrives as ``event: error``
(https://docs.anthropic.com/en/api/messages-streaming#error-events).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from apps.core.errors import UpstreamError
from apps.providers.errors import map_status, upstream_error

PROVIDER = "anthropic"

# Anthropic error type -> the HTTP status the API documents for it.
STATUS_BY_TYPE = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "conflict_error": 409,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}

_CONTEXT_MARKERS = ("prompt is too long", "context window", "context length", "too many tokens")
_POLICY_MARKERS = ("content filtering policy", "content policy", "usage policy")


def _code(status: int, err_type: str | None, message: str) -> str | None:
    lowered = message.lower()
    if status == 400 and any(m in lowered for m in _CONTEXT_MARKERS):
        return "context_length_exceeded"
    if status == 400 and any(m in lowered for m in _POLICY_MARKERS):
        return "content_policy_violation"
    return err_type


def error_from_parts(
    status: int, err_type: str | None, message: str, headers: Mapping[str, str] | None = None
) -> UpstreamError:
    """The UpstreamError for an Anthropic error: the client status follows
    ``errors.map_status`` (529 -> 503, 500 -> 502, 4xx kept), retry-after headers are kept."""
    client_status = map_status(status)
    text = message.strip() or f"HTTP {status}"
    return upstream_error(
        PROVIDER,
        text,
        upstream_status=status,
        client_status=client_status,
        headers=headers or {},
        code=_code(client_status, err_type, text),
    )


def _error_object(body: bytes) -> tuple[str | None, str]:
    try:
        data: Any = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        data = None
    if isinstance(data, dict):
        err = data.get("error")
        if isinstance(err, dict):
            err_type = err.get("type") if isinstance(err.get("type"), str) else None
            return err_type, str(err.get("message") or "")
        if isinstance(err, str):
            return None, err
        if isinstance(data.get("message"), str):
            return None, data["message"]
    text = body[:500].decode("utf-8", "replace").strip() if body else ""
    return None, text


def parse_error(status: int, body: bytes, headers: Mapping[str, str]) -> UpstreamError:
    """An HTTP error response from the Messages API."""
    err_type, message = _error_object(body)
    return error_from_parts(status, err_type, message, headers)


def stream_error(data: Any) -> UpstreamError:
    """An ``event: error`` payload: the status is the one the docs give for its error type."""
    err = data.get("error") if isinstance(data, dict) else None
    if not isinstance(err, dict):
        return error_from_parts(500, "api_error", "stream error")
    raw_type = err.get("type")
    err_type = raw_type if isinstance(raw_type, str) else "api_error"
    status = STATUS_BY_TYPE.get(err_type, 500)
    return error_from_parts(status, err_type, str(err.get("message") or err_type))
