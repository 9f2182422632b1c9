"""Upstream error responses -> the gateway's ``UpstreamError``: the status the client sees,
the retry-after headers kept, and OpenAI-shaped error bodies read (most upstreams use them)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from apps.core.errors import OPENAI_TYPE_BY_STATUS, UpstreamError


def map_status(status: int) -> int:
    """The status the client sees for an upstream status: client errors and 429 keep theirs
    (the SDKs raise the matching exception class), 503/529 mean overloaded (503), a timeout
    stays a timeout, any other upstream failure is a bad gateway (502)."""
    if status in (503, 529):
        return 503
    if status in (408, 504):
        return status
    if 400 <= status < 500:
        return status
    return 502


def retry_after_headers(headers: Mapping[str, str]) -> dict[str, str]:
    out = {}
    for name in ("retry-after", "retry-after-ms"):
        value = headers.get(name) or headers.get(name.title())
        if value:
            out[name] = value
    return out


def upstream_error(
    provider: str,
    message: str,
    *,
    upstream_status: int,
    client_status: int,
    headers: Mapping[str, str],
    type: str | None = None,
    code: str | None = None,
    param: str | None = None,
) -> UpstreamError:
    """The gateway's error for an upstream's error response: the message names the provider,
    the type is OpenAI's for the client's status unless given, retry-after headers are kept."""
    return UpstreamError(
        f"{provider} error: {message}",
        upstream_status=upstream_status,
        http_status=client_status,
        type=type or OPENAI_TYPE_BY_STATUS.get(client_status, "api_error"),
        code=code,
        param=param,
        headers=retry_after_headers(headers),
    )


def error_from_openai_body(
    provider: str, status: int, body: bytes, headers: Mapping[str, str]
) -> UpstreamError:
    """An UpstreamError from an OpenAI-style error body (or any body, as a last resort)."""
    message = ""
    err_type: str | None = None
    code: Any = None
    param: Any = None
    try:
        data = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        data = None
    if isinstance(data, dict):
        err = data.get("error", data)
        if isinstance(err, dict):
            message = str(err.get("message") or err.get("detail") or "")
            err_type = err.get("type") if isinstance(err.get("type"), str) else None
            code = err.get("code")
            param = err.get("param")
        elif isinstance(err, str):
            message = err
        if not message and isinstance(data.get("detail"), str):
            message = data["detail"]
    if not message:
        text = body[:500].decode("utf-8", "replace").strip() if body else ""
        message = text or f"HTTP {status}"
    return upstream_error(
        provider,
        message,
        upstream_status=status,
        client_status=map_status(status),
        headers=headers,
        type=err_type,
        code=str(code) if code is not None else None,
        param=str(param) if isinstance(param, str) else None,
    )
