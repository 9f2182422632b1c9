"""Gateway errors as Anthropic error bodies, for Messages-format clients.

https://docs.anthropic.com/en/api/errors: ``{"type": "error", "error": {"type", "message"}}``,
the type given by the status.
"""

from __future__ import annotations

from apps.providers.schemas import JSONDict

ERROR_TYPE_BY_STATUS = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    409: "conflict_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    502: "api_error",
    503: "overloaded_error",
    504: "timeout_error",
    529: "overloaded_error",
}


def anthropic_error_body(status: int, message: str) -> JSONDict:
    """``{"type": "error", "error": {"type", "message"}}`` with the type the docs give for the
    status (other 4xx: invalid_request_error, other 5xx: api_error)."""
    err_type = ERROR_TYPE_BY_STATUS.get(status)
    if err_type is None:
        err_type = "invalid_request_error" if 400 <= status < 500 else "api_error"
    return {"type": "error", "error": {"type": err_type, "message": message}}
