from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from apps.teams import access
from apps.teams.admin_access import TenantAdmin, TenantInline, actor_for
from apps.teams.models import (
    Budget,
    EndUser,
    GatewayUser,
    Organization,
    OrganizationMembership,
    Team,
    TeamMembership,
)

SPEND = ("spend", "model_spend")


class TeamMembershipInline(TenantInline):
    model = TeamMembership
    extra = 0
    fields = ("user", "role", "budget", "max_budget", "spend")
    readonly_fields = ("spend",)
    autocomplete_fields = ("user",)


class OrganizationMembershipInline(TenantInline):
    model = OrganizationMembership
    extra = 0
    fields = ("user", "role", "budget", "max_budget", "spend")
    readonly_fields = ("spend",)
    autocomplete_fields = ("user",)


@admin.register(Organization)
class OrganizationAdmin(TenantAdmin):
    scope = staticmethod(access.organizations)
    list_display = ("organization_alias", "organization_id", "spend", "max_budget", "created_at")
    search_fields = ("organization_alias", "organization_id")
    readonly_fields = SPEND
    inlines = (OrganizationMembershipInline,)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        """Organization admins rename their organization; its budget, limits, models and
        blocking are set by proxy admins (as on the API)."""
        if actor_for(request).is_proxy_admin:
            return SPEND
        editable = ("organization_alias", "metadata")
        return tuple(f.name for f in Organization._meta.concrete_fields if f.name not in editable)


@admin.register(Team)
class TeamAdmin(TenantAdmin):
    scope = staticmethod(access.teams)
    list_display = ("team_alias", "team_id", "organization", "spend", "max_budget", "blocked")
    list_filter = ("blocked", "organization")
    search_fields = ("team_alias", "team_id")
    readonly_fields = SPEND
    inlines = (TeamMembershipInline,)

    def has_add_permission(self, request: HttpRequest) -> bool:
        actor = actor_for(request)
        return actor.is_proxy_admin or bool(actor.admin_org_ids())

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        """Team admins change labels and members; budgets, models and the organization are
        set by organization and proxy admins (as on the API)."""
        actor = actor_for(request)
        org_level = actor.is_proxy_admin or (
            obj is not None and obj.organization_id in actor.admin_org_ids()
        )
        if obj is None or org_level:
            return SPEND
        return tuple(
            f.name
            for f in Team._meta.concrete_fields
            if f.name not in ("team_alias", "metadata", "model_aliases")
        )

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "organization" and not actor_for(request).is_proxy_admin:
            kwargs["queryset"] = Organization.objects.filter(
                pk__in=actor_for(request).admin_org_ids()
            )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


@admin.register(GatewayUser)
class GatewayUserAdmin(TenantAdmin):
    scope = staticmethod(access.users)
    list_display = ("user_id", "user_alias", "user_email", "user_role", "spend", "max_budget")
    list_filter = ("user_role",)
    search_fields = ("user_id", "user_alias", "user_email")
    readonly_fields = SPEND

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        """Roles and logins are the proxy admins' to give (as on the API)."""
        if actor_for(request).is_proxy_admin:
            return SPEND
        return (*SPEND, "user_role", "auth_user")


@admin.register(EndUser)
class EndUserAdmin(TenantAdmin):
    list_display = ("user_id", "alias", "allowed_model_region", "spend", "max_budget", "blocked")
    list_filter = ("blocked", "allowed_model_region")
    search_fields = ("user_id", "alias")
    readonly_fields = SPEND


@admin.register(Budget)
class BudgetAdmin(TenantAdmin):
    list_display = ("budget_id", "max_budget", "budget_duration", "rpm_limit", "tpm_limit")
    search_fields = ("budget_id",)
