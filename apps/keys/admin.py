from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from apps.keys import services
from apps.keys.models import VirtualKey

_SHOW_ONCE = "Copy this key now: it is not stored and will not be shown again: {}"


class VirtualKeyForm(forms.ModelForm[VirtualKey]):
    class Meta:
        model = VirtualKey
        fields = (
            "key_alias",
            "team",
            "user",
            "allowed_models",
            "max_budget",
            "budget_duration",
            "rpm_limit",
            "tpm_limit",
            "max_parallel_requests",
            "expires_at",
            "blocked",
            "metadata",
        )


@admin.register(VirtualKey)
class VirtualKeyAdmin(admin.ModelAdmin[VirtualKey]):
    form = VirtualKeyForm
    list_display = (
        "key_display",
        "key_alias",
        "team",
        "spend",
        "max_budget",
        "expires_at",
        "blocked",
        "created_at",
    )
    list_filter = ("blocked", "team")
    list_select_related = ("team",)
    search_fields = ("key_alias", "key_display", "user__user_id")
    readonly_fields = ("key_display", "spend", "created_at", "updated_at")
    actions = ("block_keys", "unblock_keys", "regenerate_keys")

    def save_model(self, request: HttpRequest, obj: VirtualKey, form: Any, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        data = form.cleaned_data
        key, raw = services.key_issue(
            team=data.get("team"),
            key_alias=data.get("key_alias") or "",
            models=data.get("allowed_models") or [],
            max_budget=data.get("max_budget"),
            rpm_limit=data.get("rpm_limit"),
            tpm_limit=data.get("tpm_limit"),
            max_parallel_requests=data.get("max_parallel_requests"),
            expires_at=data.get("expires_at"),
            metadata=data.get("metadata") or {},
            user=data.get("user"),
        )
        obj.pk = key.pk
        obj.digest = key.digest
        obj.key_display = key.key_display
        messages.warning(request, _SHOW_ONCE.format(raw))

    @admin.action(description="Block selected keys")
    def block_keys(self, request: HttpRequest, queryset: QuerySet[VirtualKey]) -> None:
        for key in queryset:
            services.key_block(key=key, blocked=True)

    @admin.action(description="Unblock selected keys")
    def unblock_keys(self, request: HttpRequest, queryset: QuerySet[VirtualKey]) -> None:
        for key in queryset:
            services.key_block(key=key, blocked=False)

    @admin.action(description="Regenerate selected keys (the old secret stops working)")
    def regenerate_keys(self, request: HttpRequest, queryset: QuerySet[VirtualKey]) -> None:
        for key in queryset:
            _, raw = services.key_regenerate(key=key)
            messages.warning(request, f"{key}: " + _SHOW_ONCE.format(raw))
