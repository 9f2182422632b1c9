from __future__ import annotations

from django.contrib import admin

from apps.teams.models import Organization, Team


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin[Organization]):
    list_display = ("name", "spend", "max_budget", "created_at")
    search_fields = ("name",)
    readonly_fields = ("spend",)


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin[Team]):
    list_display = ("team_alias", "organization", "spend", "max_budget", "blocked", "created_at")
    list_filter = ("blocked", "organization")
    search_fields = ("team_alias",)
    readonly_fields = ("spend",)
