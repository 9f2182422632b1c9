from __future__ import annotations

from django.contrib import admin

from apps.teams.models import (
    Budget,
    EndUser,
    GatewayUser,
    Organization,
    OrganizationMembership,
    Team,
    TeamMembership,
)

LIMITS = (
    "budget",
    "max_budget",
    "soft_budget",
    "budget_duration",
    "budget_reset_at",
    "rpm_limit",
    "tpm_limit",
    "max_parallel_requests",
    "model_max_budget",
)
SPEND = ("spend", "model_spend")


class TeamMembershipInline(admin.TabularInline[TeamMembership, Team]):
    model = TeamMembership
    extra = 0
    fields = ("user", "role", "budget", "max_budget", "spend")
    readonly_fields = ("spend",)
    autocomplete_fields = ("user",)


class OrganizationMembershipInline(admin.TabularInline[OrganizationMembership, Organization]):
    model = OrganizationMembership
    extra = 0
    fields = ("user", "role", "budget", "max_budget", "spend")
    readonly_fields = ("spend",)
    autocomplete_fields = ("user",)


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin[Organization]):
    list_display = ("organization_alias", "organization_id", "spend", "max_budget", "created_at")
    search_fields = ("organization_alias", "organization_id")
    readonly_fields = SPEND
    inlines = (OrganizationMembershipInline,)


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin[Team]):
    list_display = ("team_alias", "team_id", "organization", "spend", "max_budget", "blocked")
    list_filter = ("blocked", "organization")
    search_fields = ("team_alias", "team_id")
    readonly_fields = SPEND
    inlines = (TeamMembershipInline,)


@admin.register(GatewayUser)
class GatewayUserAdmin(admin.ModelAdmin[GatewayUser]):
    list_display = ("user_id", "user_alias", "user_email", "user_role", "spend", "max_budget")
    list_filter = ("user_role",)
    search_fields = ("user_id", "user_alias", "user_email")
    readonly_fields = SPEND


@admin.register(EndUser)
class EndUserAdmin(admin.ModelAdmin[EndUser]):
    list_display = ("user_id", "alias", "allowed_model_region", "spend", "max_budget", "blocked")
    list_filter = ("blocked", "allowed_model_region")
    search_fields = ("user_id", "alias")
    readonly_fields = SPEND


@admin.register(Budget)
class BudgetAdmin(admin.ModelAdmin[Budget]):
    list_display = ("budget_id", "max_budget", "budget_duration", "rpm_limit", "tpm_limit")
    search_fields = ("budget_id",)
