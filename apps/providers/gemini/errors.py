"""Google API errors -> UpstreamError.

Google APIs answer ``{"error": {"code", "message", "status", "details"}}`` (sometimes wrapped in a
one-element list by the streaming endpoint); ``status`` is a google.rpc.Code name. The OAuth token
endpoint answers RFC 6749 errors instead: ``{"error": "invalid_grant", "error_description"}``.

https://ai.google.dev/gemini-api/docs/troubleshooting#error-codes
https://cloud.google.com/apis/design/errors#handling_errors
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import orjson

from apps.core.errors import UpstreamError
from apps.providers.errors import map_status, retry_after_headers, upstream_error

# google.rpc.Code name -> the status the client sees.
_BY_RPC_STATUS = {
    "INVALID_ARGUMENT": 400,
    "FAILED_PRECONDITION": 400,
    "OUT_OF_RANGE": 400,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    "NOT_FOUND": 404,
    "ALREADY_EXISTS": 409,
    "ABORTED": 409,
    "RESOURCE_EXHAUSTED": 429,
    "CANCELLED": 502,
    "UNAVAILABLE": 503,
    "DEADLINE_EXCEEDED": 504,
    "INTERNAL": 502,
    "UNKNOWN": 502,
    "DATA_LOSS": 502,
    "UNIMPLEMENTED": 400,
}
# Reasons (google.rpc.ErrorInfo) that mean the credential itself is bad, whatever the status.
_AUTH_REASONS = frozenset({"API_KEY_INVALID", "API_KEY_EXPIRED", "ACCESS_TOKEN_EXPIRED"})
# RFC 6749 §5.2 errors from the token endpoint that mean the credentials were refused.
_OAUTH_AUTH_ERRORS = frozenset({"invalid_grant", "invalid_client", "unauthorized_client"})
# "The input token count (3475108) exceeds the maximum number of tokens allowed (1048576)."
_CONTEXT_TOO_LONG = re.compile(
    r"input token count.*exceeds|exceeds the maximum number of tokens|context (window|length)"
    r"|too many tokens|prompt is too long",
    re.IGNORECASE,
)
_RETRY_DELAY = re.compile(r"^(\d+(?:\.\d+)?)s$")


def _error_object(body: bytes) -> tuple[dict[str, Any] | None, Any]:
    try:
        data = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        return None, None
    if isinstance(data, list) and data and isinstance(data[0], dict):
        data = data[0]
    if not isinstance(data, dict):
        return None, None
    return data, data.get("error")


def _details(err: dict[str, Any]) -> tuple[str | None, str | None]:
    """(ErrorInfo reason, RetryInfo delay in whole seconds) from ``error.details``."""
    reason = delay = None
    details = err.get("details")
    for item in details if isinstance(details, list) else ():
        if not isinstance(item, dict):
            continue
        kind = str(item.get("@type", ""))
        if kind.endswith("google.rpc.ErrorInfo") and isinstance(item.get("reason"), str):
            reason = item["reason"]
        elif kind.endswith("google.rpc.RetryInfo"):
            match = _RETRY_DELAY.match(str(item.get("retryDelay", "")))
            if match:
                delay = str(max(1, round(float(match.group(1)))))
    return reason, delay


def google_error(
    provider: str, status: int, body: bytes, headers: Mapping[str, str]
) -> UpstreamError:
    """An UpstreamError for a Google error response (or any body, as a last resort)."""
    data, err = _error_object(body)
    out_headers = retry_after_headers(headers)
    code: str | None = None
    if isinstance(err, dict):
        message = str(err.get("message") or "")
        rpc_status = str(err.get("status") or "")
        reason, delay = _details(err)
        client_status = _BY_RPC_STATUS.get(rpc_status) or map_status(status)
        if reason in _AUTH_REASONS or client_status == 401:
            client_status, code = 401, "invalid_api_key"
        elif client_status == 400 and _CONTEXT_TOO_LONG.search(message):
            code = "context_length_exceeded"
        elif client_status == 429:
            code = "rate_limit_exceeded"
            if delay and "retry-after" not in out_headers:
                out_headers["retry-after"] = delay
        elif rpc_status:
            code = rpc_status.lower()
    elif isinstance(err, str) and data is not None:
        # OAuth token endpoint error.
        message = f"{err}: {data.get('error_description') or ''}".rstrip(": ")
        client_status = 401 if err in _OAUTH_AUTH_ERRORS else map_status(status)
        code = err
    else:
        text = body[:500].decode("utf-8", "replace").strip() if body else ""
        message = text or f"HTTP {status}"
        client_status = map_status(status)
    return upstream_error(
        provider,
        message or f"HTTP {status}",
        upstream_status=status,
        client_status=client_status,
        headers=out_headers,
        code=code,
    )


def stream_error(provider: str, payload: Any) -> UpstreamError | None:
    """The error carried by a stream event, or None when the event is not an error."""
    if isinstance(payload, dict) and isinstance(payload.get("error"), dict):
        err = payload["error"]
        status = err.get("code") if isinstance(err.get("code"), int) else 500
        return google_error(provider, status, orjson.dumps(payload), {})
    return None
