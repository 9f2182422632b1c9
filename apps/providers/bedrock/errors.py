"""Bedrock error responses and stream exception events -> UpstreamError.

Errors are REST-JSON: the type is in the ``x-amzn-ErrorType`` header (``Type:namespace``) or
the body's ``__type``/``code``, the text in ``message`` (``Message`` for some auth failures).
https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_Converse.html#API_runtime_Converse_Errors
https://docs.aws.amazon.com/bedrock/latest/APIReference/CommonErrors.html
https://docs.aws.amazon.com/bedrock/latest/userguide/troubleshooting-api-error-codes.html
"""

from __future__ import annotations

from collections.abc import Mapping

import orjson

from apps.core.errors import UpstreamError
from apps.providers.errors import map_status, upstream_error

# Error type -> the status the client sees.
_STATUS_BY_TYPE = {
    "ValidationException": 400,
    "AccessDeniedException": 403,
    "ResourceNotFoundException": 404,
    "ModelTimeoutException": 408,
    "ThrottlingException": 429,
    "ServiceQuotaExceededException": 429,
    # The model is being loaded: a transient outage, not the caller's rate.
    "ModelNotReadyException": 503,
    "ServiceUnavailableException": 503,
    "ServiceUnavailable": 503,
    "InternalServerException": 502,
    "InternalFailure": 502,
    "ModelErrorException": 502,
    "ModelStreamErrorException": 502,
}
# Rejected credentials: an authentication failure for the client (401), whatever AWS's status.
_AUTH_TYPES = frozenset(
    {
        "UnrecognizedClientException",
        "InvalidSignatureException",
        "IncompleteSignature",
        "IncompleteSignatureException",
        "InvalidClientTokenId",
        "ExpiredToken",
        "ExpiredTokenException",
        "MissingAuthenticationToken",
        "MissingAuthenticationTokenException",
        "RequestExpired",
    }
)
# Bedrock API keys that are rejected come back as a bare 403 with one of these messages.
_AUTH_MESSAGES = ("authentication failed", "invalid api key")
_CONTEXT_MESSAGES = (
    "input is too long",
    "too many tokens",
    "too many input tokens",
    "prompt is too long",
    "context length",
    "context window",
    "maximum context",
)
# Signature errors quote the canonical request, which holds x-amz-security-token: cut there.
_SECRET_MARKERS = ("The Canonical String for this request", "The String-to-Sign")


def _type_name(raw: str | None) -> str | None:
    if not raw:
        return None
    return raw.split(":", 1)[0].rsplit("#", 1)[-1].strip() or None


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:
        lowered = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == lowered), None)
    return value


def _clean(message: str) -> str:
    for marker in _SECRET_MARKERS:
        cut = message.find(marker)
        if cut != -1:
            message = message[:cut]
    message = message.strip()
    return message[:1000]


def bedrock_error(
    status: int,
    error_type: str | None,
    message: str,
    headers: Mapping[str, str] | None = None,
) -> UpstreamError:
    """The UpstreamError for an error of ``error_type`` that Bedrock reported with ``status``."""
    message = _clean(message) or f"HTTP {status}"
    lowered = message.lower()
    code = error_type
    if error_type in _AUTH_TYPES or (
        status in (401, 403) and error_type is None and any(m in lowered for m in _AUTH_MESSAGES)
    ):
        client_status = 401
    elif error_type in _STATUS_BY_TYPE:
        client_status = _STATUS_BY_TYPE[error_type]
    else:
        client_status = map_status(status)
    if client_status == 400 and any(m in lowered for m in _CONTEXT_MESSAGES):
        code = "context_length_exceeded"
    return upstream_error(
        "bedrock",
        message,
        upstream_status=status,
        client_status=client_status,
        headers=headers or {},
        code=code,
    )


def parse_error(status: int, body: bytes, headers: Mapping[str, str]) -> UpstreamError:
    data: object = None
    if body:
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            data = None
    message = ""
    error_type = _type_name(_header(headers, "x-amzn-ErrorType"))
    if isinstance(data, dict):
        raw = data.get("message", data.get("Message"))
        message = raw if isinstance(raw, str) else ""
        if error_type is None:
            for key in ("__type", "code", "Code"):
                if isinstance(data.get(key), str):
                    error_type = _type_name(data[key])
                    break
    elif body:
        message = body[:500].decode("utf-8", "replace")
    return bedrock_error(status, error_type, message, headers)


# ConverseStream exception events: event name -> the HTTP status the API reference gives it.
# https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_ConverseStreamOutput.html
STREAM_EXCEPTION_STATUS = {
    "internalServerException": 500,
    "modelStreamErrorException": 424,
    "validationException": 400,
    "throttlingException": 429,
    "serviceUnavailableException": 503,
    "modelTimeoutException": 408,
}


def stream_exception(exception_type: str, payload: bytes) -> UpstreamError:
    """The UpstreamError for an ``exception`` message inside a ConverseStream body."""
    message = ""
    try:
        data = orjson.loads(payload) if payload else None
    except orjson.JSONDecodeError:
        data = None
    if isinstance(data, dict):
        raw = data.get("message", data.get("Message"))
        message = raw if isinstance(raw, str) else ""
    status = STREAM_EXCEPTION_STATUS.get(exception_type, 500)
    error_type = exception_type[:1].upper() + exception_type[1:]
    return bedrock_error(status, error_type, message or exception_type)
