"""``/metrics``: Prometheus text format, optionally for the master key only."""

from __future__ import annotations

import hmac

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST

from apps.keys import hashing
from apps.keys.auth import _load_master_digests, bearer_token
from apps.usage import metrics


def _is_master(request: HttpRequest) -> bool:
    token = bearer_token(request.headers.get("Authorization"))
    if not token:
        return False
    digest = hashing.digest(token)
    return any(hmac.compare_digest(digest, known) for known in _load_master_digests())


@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    if settings.GATEWAY_METRICS_REQUIRE_AUTH and not _is_master(request):
        return JsonResponse(
            {
                "error": {
                    "message": "/metrics needs the master key (GATEWAY_METRICS_REQUIRE_AUTH).",
                    "type": "invalid_request_error",
                    "param": None,
                    "code": "invalid_api_key",
                }
            },
            status=401,
        )
    return HttpResponse(metrics.exposition(), content_type=CONTENT_TYPE_LATEST)
