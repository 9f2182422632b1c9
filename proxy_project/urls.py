from __future__ import annotations

from django.contrib import admin
from django.urls import include, path, re_path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularJSONAPIView, SpectacularSwaggerView
from rest_framework.permissions import AllowAny

from apps.core.api.views import not_found
from apps.usage.views import metrics_view

admin.site.site_header = "LLM Gateway"
admin.site.site_title = "LLM Gateway admin"
admin.site.index_title = "Models, keys and usage"

# Management paths: anything under these prefixes that no route serves is a JSON 404.
MANAGEMENT_PREFIXES = (
    "key",
    "team",
    "organization",
    "user",
    "customer",
    "end_user",
    "budget",
    "model",
    "spend",
    "global",
)

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("admin/", admin.site.urls),
    path("metrics", metrics_view),
    path("metrics/", metrics_view),
    path("", include("apps.keys.api.urls")),
    path("", include("apps.teams.api.urls")),
    path("", include("apps.routing.api.urls")),
    path("", include("apps.usage.api.urls")),
    path(
        "openapi.json",
        SpectacularJSONAPIView.as_view(authentication_classes=[], permission_classes=[AllowAny]),
        name="openapi-schema",
    ),
    path(
        "docs",
        SpectacularSwaggerView.as_view(
            url_name="openapi-schema", authentication_classes=[], permission_classes=[AllowAny]
        ),
        name="docs",
    ),
    # Keep last: routes added after it under these prefixes would never be reached.
    re_path(rf"^(?:{'|'.join(MANAGEMENT_PREFIXES)})(?:/.*)?$", not_found),
]

handler404 = "apps.core.api.views.not_found"
