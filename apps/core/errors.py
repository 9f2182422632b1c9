"""One error hierarchy for the whole gateway.

Each error carries its HTTP status, the OpenAI error ``type`` and ``code`` as class attributes;
subclasses only override those. The client-facing dialect (OpenAI, Anthropic, ...) renders them.
Messages must never contain credentials: they are shown to clients and written to logs.
"""

from __future__ import annotations

from collections.abc import Mapping


class GatewayError(Exception):
    http_status: int = 500
    type: str = "api_error"
    code: str | None = None

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        http_status: int | None = None,
        type: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code
        if http_status is not None:
            self.http_status = http_status
        if type is not None:
            self.type = type
        self.headers: dict[str, str] = dict(headers or {})

    def to_openai(self) -> dict[str, object]:
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }


class InvalidRequest(GatewayError):
    http_status = 400
    type = "invalid_request_error"
    code = "invalid_request"


class AuthenticationError(GatewayError):
    http_status = 401
    type = "invalid_request_error"
    code = "invalid_api_key"


class PermissionDenied(GatewayError):
    http_status = 403
    type = "permission_error"
    code = "model_not_allowed"


class ModelNotFound(GatewayError):
    http_status = 404
    type = "invalid_request_error"
    code = "model_not_found"


class NotFound(GatewayError):
    http_status = 404
    type = "invalid_request_error"
    code = "not_found"


class MethodNotAllowed(GatewayError):
    http_status = 405
    type = "invalid_request_error"
    code = "method_not_allowed"


class RateLimited(GatewayError):
    http_status = 429
    type = "rate_limit_error"
    code = "rate_limit_exceeded"


class BudgetExceeded(GatewayError):
    http_status = 429
    type = "budget_exceeded"
    code = "budget_exceeded"


class UpstreamError(GatewayError):
    """An upstream provider failed. ``retryable`` tells the fallback loop whether another
    deployment may succeed (429, 5xx, timeouts) or the request itself is at fault (400, 401...)."""

    http_status = 502
    type = "api_error"
    code = "upstream_error"
    # Whether the upstream may have received the request (see the transport errors below).
    request_sent: bool = True

    def __init__(
        self,
        message: str,
        *,
        upstream_status: int | None = None,
        retryable: bool | None = None,
        param: str | None = None,
        code: str | None = None,
        http_status: int | None = None,
        type: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(
            message, param=param, code=code, http_status=http_status, type=type, headers=headers
        )
        self.upstream_status = upstream_status
        if retryable is None:
            retryable = self.http_status in (408, 429) or self.http_status >= 500
        self.retryable = retryable


class UpstreamTimeout(UpstreamError):
    http_status = 504
    type = "timeout"
    code = "upstream_timeout"


class UpstreamUnavailable(UpstreamError):
    http_status = 502
    type = "api_error"
    code = "upstream_unavailable"


# Transport failures, typed so the router can tell a safe retry from a possible duplicate.
# ``request_sent`` is False only when the upstream cannot have seen the request (the connection
# was never made, TLS failed, no connection could be had): retrying it never duplicates a
# generation. When True the upstream may have read the request and started (and billed) work,
# so it must not be replayed silently.


class UpstreamConnectFailed(UpstreamUnavailable):
    """No connection could be made (refused, unreachable, name not resolved, proxy refused)."""

    code = "upstream_connect_failed"
    request_sent = False


class UpstreamConnectTimeout(UpstreamTimeout):
    """The connection was not established in time; nothing was sent."""

    code = "upstream_connect_timeout"
    request_sent = False


class UpstreamTLSError(UpstreamUnavailable):
    """The TLS handshake failed (untrusted or wrong-host certificate...); nothing was sent."""

    code = "upstream_tls_error"
    request_sent = False


class UpstreamPoolExhausted(UpstreamError):
    """Every connection allowed to this upstream was busy for the whole queue timeout."""

    http_status = 503
    code = "upstream_pool_exhausted"
    request_sent = False


class UpstreamDisconnected(UpstreamUnavailable):
    """The connection ended after the request went out: the upstream may have read it."""

    code = "upstream_disconnected"


class UpstreamProtocolError(UpstreamUnavailable):
    """The upstream's answer is not valid HTTP, or exceeds the gateway's limits."""

    code = "upstream_protocol_error"


class ServiceUnavailable(GatewayError):
    http_status = 503
    type = "api_error"
    code = "service_unavailable"


# OpenAI error types by status, for errors rebuilt from an upstream status.
# https://platform.openai.com/docs/guides/error-codes
OPENAI_TYPE_BY_STATUS = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    403: "permission_error",
    404: "invalid_request_error",
    408: "timeout",
    409: "invalid_request_error",
    413: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
}
