from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from apps.core.models import ProxyConfig


@admin.register(ProxyConfig)
class ProxyConfigAdmin(admin.ModelAdmin[ProxyConfig]):
    list_display = ("__str__", "updated_at")
    fields = (
        "litellm_settings",
        "router_settings",
        "general_settings",
        "environment_variables",
        "extra",
        "master_key_ref",
        "updated_at",
    )
    readonly_fields = ("environment_variables", "updated_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return not ProxyConfig.objects.exists()

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
