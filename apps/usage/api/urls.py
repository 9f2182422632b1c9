from __future__ import annotations

from django.urls import path

from apps.usage.api import views

urlpatterns = [
    path("spend/logs", views.spend_logs),
    path("global/spend/report", views.global_spend_report),
    path("global/spend/keys", views.global_spend_keys),
    path("global/spend/models", views.global_spend_models),
    path("global/spend/teams", views.global_spend_teams),
]
