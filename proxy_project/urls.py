from __future__ import annotations

from django.contrib import admin
from django.urls import path
from django.views.generic import RedirectView

from apps.usage.views import metrics_view

admin.site.site_header = "LLM Gateway"
admin.site.site_title = "LLM Gateway admin"
admin.site.index_title = "Models, keys and usage"

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("admin/", admin.site.urls),
    path("metrics", metrics_view),
    path("metrics/", metrics_view),
]
