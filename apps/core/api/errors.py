"""Every management API error in the one shape clients know:
``{"error": {"message", "type", "param", "code"}}``, with the right status. Used as DRF's
``EXCEPTION_HANDLER`` and by the JSON 404 of unknown management paths."""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db.models import ProtectedError
from django.http import Http404
from rest_framework import exceptions as drf
from rest_framework.response import Response

from apps.core.errors import GatewayError

logger = logging.getLogger(__name__)

_TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    403: "permission_error",
    404: "invalid_request_error",
    405: "invalid_request_error",
    406: "invalid_request_error",
    409: "invalid_request_error",
    415: "invalid_request_error",
    429: "rate_limit_error",
}


def error_body(
    message: str, *, status: int, param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    return {
        "error": {
            "message": message,
            "type": _TYPES.get(status, "api_error"),
            "param": param,
            "code": code,
        }
    }


def _flatten(detail: Any, prefix: str = "") -> list[tuple[str, str]]:
    """(field path, message) pairs of a DRF validation detail, in order."""
    if isinstance(detail, dict):
        pairs: list[tuple[str, str]] = []
        for key, value in detail.items():
            name = str(key) if key != "non_field_errors" else ""
            path = f"{prefix}.{name}" if prefix and name else (name or prefix)
            pairs.extend(_flatten(value, path))
        return pairs
    if isinstance(detail, list):
        pairs = []
        for index, value in enumerate(detail):
            nested = isinstance(value, dict | list)
            pairs.extend(_flatten(value, f"{prefix}[{index}]" if nested else prefix))
        return pairs
    return [(prefix, str(detail))]


def validation_response(detail: Any) -> Response:
    pairs = _flatten(detail) or [("", "Invalid request.")]
    message = "; ".join(f"{path}: {text}" if path else text for path, text in pairs)
    param = next((path for path, _ in pairs if path), None)
    return Response(error_body(message, status=400, param=param, code="invalid_request"), 400)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    if isinstance(exc, GatewayError):
        return Response(exc.to_openai(), status=exc.http_status, headers=exc.headers or None)
    if isinstance(exc, drf.ValidationError):
        return validation_response(exc.detail)
    if isinstance(exc, Http404 | drf.NotFound):
        text = str(exc) or "Not found."
        return Response(error_body(text, status=404, code="not_found"), 404)
    if isinstance(exc, drf.NotAuthenticated):
        body = error_body(
            "Missing API key. Pass it as 'Authorization: Bearer sk-...'.",
            status=401,
            code="missing_api_key",
        )
        return Response(body, 401, headers={"WWW-Authenticate": "Bearer"})
    if isinstance(exc, drf.AuthenticationFailed):
        body = error_body(str(exc.detail), status=401, code="invalid_api_key")
        return Response(body, 401, headers={"WWW-Authenticate": "Bearer"})
    if isinstance(exc, drf.PermissionDenied | DjangoPermissionDenied):
        text = str(getattr(exc, "detail", "") or exc) or "You may not do this."
        return Response(error_body(text, status=403, code="forbidden"), 403)
    if isinstance(exc, ProtectedError):
        names = sorted({f"{o._meta.verbose_name} {o}" for o in exc.protected_objects})[:5]
        text = "It is still in use by: " + ", ".join(names) + "."
        return Response(error_body(text, status=409, code="in_use"), 409)
    if isinstance(exc, drf.APIException):
        status = exc.status_code
        code = exc.default_code if isinstance(exc.default_code, str) else None
        headers = {}
        if isinstance(exc, drf.MethodNotAllowed):
            view = context.get("view")
            if view is not None:
                headers["Allow"] = ", ".join(view.allowed_methods)
        wait = getattr(exc, "wait", None)
        if isinstance(exc, drf.Throttled) and wait is not None:
            headers["Retry-After"] = str(int(wait))
        return Response(
            error_body(str(exc.detail), status=status, code=code), status, headers=headers
        )
    logger.exception("management request failed")
    body = error_body("Internal error.", status=500, code="internal_error")
    return Response(body, 500)
