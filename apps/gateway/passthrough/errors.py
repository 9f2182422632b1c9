"""Errors on the native routes, in each SDK's own shape.

An upstream's own error answer is relayed as it came (status, body, error type), so the SDK
raises the exception it would have raised against the provider; errors of the gateway itself
(key, model access, limits) are rendered in the provider's error format:
- Google: ``{"error": {"code", "message", "status"}}`` (https://cloud.google.com/apis/design/errors)
- Bedrock: ``{"message": ...}`` with the type in ``x-amzn-errortype``
  (https://docs.aws.amazon.com/bedrock/latest/APIReference/CommonErrors.html)
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import orjson

from apps.core.errors import GatewayError, UpstreamError
from apps.gateway.call import scrub
from apps.gateway.dialects.base import StreamEncoder
from apps.providers.schemas import CanonicalRequest, Result, Target

# Upstream error headers the client may see.
_RELAYED_HEADERS = ("x-amzn-errortype", "retry-after", "retry-after-ms")
# Deployment parameters holding credentials (aws_session_token, vertex_credentials...), by name.
_SECRET_PARAM = re.compile(r"secret|token|key|credential|password", re.IGNORECASE)
# Shorter values (a region, a project) are not secrets and would match unrelated text.
_MIN_SECRET_LEN = 12


def scrub_upstream(text: str, target: Target) -> str:
    """``text`` from an upstream without any credential of ``target``: its key and token, and
    every credential-like parameter (AWS signature errors quote the session token)."""
    for name, value in target.params.items():
        if isinstance(value, str) and len(value) >= _MIN_SECRET_LEN and _SECRET_PARAM.search(name):
            text = text.replace(value, "****")
    return scrub(text, target)


class RelayedError(UpstreamError):
    """An upstream error answer that goes back to the client as the upstream sent it (with
    any credential of the deployment scrubbed). Retryable like the error it wraps."""

    def __init__(
        self,
        source: UpstreamError,
        status: int,
        body: bytes,
        headers: Mapping[str, str],
        target: Target,
    ) -> None:
        lowered = {k.lower(): v for k, v in headers.items()}
        super().__init__(
            source.message,
            upstream_status=status,
            retryable=source.retryable,
            http_status=status,
            type=source.type,
            code=source.code,
            param=source.param,
            headers={name: lowered[name] for name in _RELAYED_HEADERS if name in lowered},
        )
        self.message = scrub_upstream(self.message, target)
        self.body = scrub_upstream(body.decode("utf-8", "replace"), target).encode()


_RPC_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    405: "UNIMPLEMENTED",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
_AWS_TYPE = {
    400: "ValidationException",
    401: "UnrecognizedClientException",
    403: "AccessDeniedException",
    404: "ResourceNotFoundException",
    408: "ModelTimeoutException",
    429: "ThrottlingException",
    500: "InternalServerException",
    502: "InternalServerException",
    503: "ServiceUnavailableException",
    504: "ModelTimeoutException",
}


class _NativeDialect:
    """Errors only: native answers are relayed, never rendered."""

    name = "native"

    def _relayed(self, err: GatewayError) -> tuple[int, bytes] | None:
        if isinstance(err, RelayedError):
            return err.http_status, err.body
        return None

    def render(self, request: CanonicalRequest, result: Result) -> bytes:
        raise NotImplementedError("native answers are relayed as they come")

    def stream_encoder(self, request: CanonicalRequest) -> StreamEncoder:
        raise NotImplementedError("native streams are relayed as they come")


class GoogleDialect(_NativeDialect):
    name = "google"

    def error(self, err: GatewayError) -> tuple[int, bytes]:
        relayed = self._relayed(err)
        if relayed is not None:
            return relayed
        status = err.http_status
        rpc = _RPC_STATUS.get(status, "INTERNAL" if status >= 500 else "FAILED_PRECONDITION")
        return status, orjson.dumps(
            {"error": {"code": status, "message": err.message, "status": rpc}}
        )


class BedrockDialect(_NativeDialect):
    name = "bedrock"

    def error(self, err: GatewayError) -> tuple[int, bytes]:
        relayed = self._relayed(err)
        if relayed is not None:
            return relayed
        status = err.http_status
        kind = _AWS_TYPE.get(
            status, "InternalServerException" if status >= 500 else "ValidationException"
        )
        # The SDK reads the error type from this header (the serve loop sends err.headers).
        err.headers.setdefault("x-amzn-errortype", kind)
        return status, orjson.dumps({"message": err.message})


GOOGLE = GoogleDialect()
BEDROCK = BedrockDialect()
