from __future__ import annotations

from django.urls import path

from apps.routing.api import models

urlpatterns = [
    path("model/new", models.model_new),
    path("model/update", models.model_update),
    path("model/delete", models.model_delete),
]
