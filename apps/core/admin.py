from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from apps.core.admin_audit import AuditedAdmin
from apps.core.models import AuditLog, ProxyConfig


@admin.register(ProxyConfig)
class ProxyConfigAdmin(AuditedAdmin[ProxyConfig]):
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


@admin.register(AuditLog)
class AuditLogAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Read only: the log is written by the management services, never edited."""

    list_display = ("created_at", "actor", "source", "action", "object_type", "object_id")
    list_filter = ("action", "object_type", "source")
    search_fields = ("actor", "object_id")
    date_hierarchy = "created_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
