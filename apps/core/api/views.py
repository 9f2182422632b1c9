"""Answers shared by every management route."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse

from apps.core.api.errors import error_body


def not_found(request: HttpRequest, exception: Any = None) -> HttpResponse:
    """A JSON 404 for any path nobody serves: API clients never see Django's HTML page."""
    message = f"Invalid URL ({request.method} {request.path})."
    return JsonResponse(error_body(message, status=404, code="not_found"), status=404)
