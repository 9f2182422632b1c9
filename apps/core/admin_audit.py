"""Admin pages whose every change (inline rows included) lands in the audit log."""

from __future__ import annotations

from typing import Any, TypeVar

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db import models, transaction
from django.db.models import QuerySet
from django.http import HttpRequest

from apps.core import audit

M = TypeVar("M", bound=models.Model)


def admin_label(request: HttpRequest) -> str:
    """The audit actor of an admin request."""
    return f"admin:{request.user.get_username()}"


def _stored(obj: models.Model) -> models.Model | None:
    if obj.pk is None:
        return None
    return type(obj)._default_manager.filter(pk=obj.pk).first()


def record_save(request: HttpRequest, obj: models.Model, before: models.Model | None) -> None:
    audit.record(
        actor=admin_label(request),
        source="admin",
        action="updated" if before is not None else "created",
        obj=obj,
        before=audit.snapshot(before) if before is not None else None,
        after=audit.snapshot(obj),
    )


def record_delete(request: HttpRequest, obj: models.Model) -> None:
    audit.record(
        actor=admin_label(request),
        source="admin",
        action="deleted",
        obj=obj,
        before=audit.snapshot(obj),
    )


class AuditedAdmin(admin.ModelAdmin[M]):
    def save_model(self, request: HttpRequest, obj: M, form: Any, change: bool) -> None:
        before = _stored(obj) if change else None
        with transaction.atomic():
            super().save_model(request, obj, form, change)
            record_save(request, obj, before)

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        with transaction.atomic():
            instances = formset.save(commit=False)
            for obj in formset.deleted_objects:
                record_delete(request, obj)
                obj.delete()
            for obj in instances:
                before = _stored(obj)
                obj.save()
                record_save(request, obj, before)
            formset.save_m2m()

    def delete_model(self, request: HttpRequest, obj: M) -> None:
        with transaction.atomic():
            record_delete(request, obj)
            super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[M]) -> None:
        for obj in queryset:
            if not self.has_delete_permission(request, obj):
                raise PermissionDenied
            self.delete_model(request, obj)
