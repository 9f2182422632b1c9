"""The admin obeys the same rules as the management API (:mod:`apps.teams.access`): every list is
scoped to what the signed-in user may see, every page and action checks ``access.may``, and
every change lands in the audit log (source "admin", through AuditedAdmin)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest

from apps.core.admin_audit import AuditedAdmin
from apps.teams import access

Scope = Callable[[access.Actor, QuerySet[Any]], QuerySet[Any]]


def actor_for(request: HttpRequest) -> access.Actor:
    """The actor of an admin request, built once per request."""
    cached = getattr(request, "_tenancy_actor", None)
    if cached is None:
        cached = access.actor_for_login(request.user)
        request._tenancy_actor = cached  # type: ignore[attr-defined]
    return cached


def _has_role(actor: access.Actor) -> bool:
    return actor.is_proxy_viewer or bool(actor.team_roles or actor.org_roles)


class TenantAdmin(AuditedAdmin[Any]):
    """A ModelAdmin whose querysets and permissions come from :mod:`apps.teams.access`.
    Subclasses set ``scope`` (None: proxy admins and viewers only)."""

    scope: Scope | None = None

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        qs = super().get_queryset(request)
        actor = actor_for(request)
        if actor.is_proxy_viewer:
            return qs
        if self.scope is None:
            return qs.none()
        return self.scope(actor, qs)

    def get_object(self, request: HttpRequest, object_id: str, from_field: Any = None) -> Any:
        obj = super().get_object(request, object_id, from_field)
        if obj is None:
            field = self.model._meta.get_field(from_field) if from_field else self.model._meta.pk
            try:
                value = field.to_python(object_id)
            except Exception:
                return None
            if self.model._default_manager.filter(**{field.name: value}).exists():
                raise PermissionDenied  # another tenant's object: 403, nothing shown
        return obj

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self.has_view_permission(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        actor = actor_for(request)
        if obj is None:
            return actor.is_proxy_viewer or (self.scope is not None and _has_role(actor))
        return access.may(actor, "view", obj)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        actor = actor_for(request)
        if obj is None:
            return actor.is_proxy_admin or (
                self.scope is not None and _has_role(actor) and not actor.read_only
            )
        return access.may(actor, "change", obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        actor = actor_for(request)
        if obj is None:
            return actor.is_proxy_admin or (
                self.scope is not None and _has_role(actor) and not actor.read_only
            )
        return access.may(actor, "delete", obj)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return actor_for(request).is_proxy_admin


class TenantInline(admin.TabularInline):  # type: ignore[type-arg]
    """Rows of a parent object (memberships of a team): whoever may change the parent may
    change them."""

    def _may(self, request: HttpRequest, obj: Any, action: access.Action) -> bool:
        actor = actor_for(request)
        if obj is None:
            return actor.is_proxy_admin
        return access.may(actor, action, obj)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._may(request, obj, "view")

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._may(request, obj, "change")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._may(request, obj, "change")

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._may(request, obj, "change")
