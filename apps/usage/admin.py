from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from apps.usage.models import DailyUsage, QuarantinedUsage, UsageLog


@admin.register(UsageLog)
class UsageLogAdmin(admin.ModelAdmin[UsageLog]):
    """Read-only: usage rows are written by the gateway only."""

    list_display = (
        "start_time",
        "model_group",
        "provider",
        "key_alias",
        "status_code",
        "prompt_tokens",
        "completion_tokens",
        "cost",
        "latency_ms",
        "stream",
    )
    list_filter = ("status_code", "stream", "provider", "call_type", "model_group")
    search_fields = ("request_id", "model_group", "key_alias", "end_user", "deployment_id")
    date_hierarchy = "start_time"
    ordering = ("-start_time",)
    show_full_result_count = False
    list_per_page = 100

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(QuarantinedUsage)
class QuarantinedUsageAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Rows the database refused: kept whole for an operator to inspect, fix and replay."""

    list_display = ("created_at", "request_id", "error")
    search_fields = ("request_id", "error")
    readonly_fields = ("created_at", "request_id", "error", "row")
    ordering = ("-created_at",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(DailyUsage)
class DailyUsageAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Read-only: the writer keeps these in step with the usage rows."""

    list_display = ("day", "kind", "entity", "model_group", "requests", "errors", "cost")
    list_filter = ("kind", "day")
    search_fields = ("entity", "model_group")
    ordering = ("-day", "kind", "entity")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
