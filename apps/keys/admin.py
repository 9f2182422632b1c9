"""Keys in the admin. A new or regenerated key is shown once, on a page of its own, from the
server-side session (never in a cookie or a message), with a button that copies it."""

from __future__ import annotations

import secrets
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import path, reverse

from apps.keys import services
from apps.keys.models import VirtualKey
from apps.teams import access
from apps.teams.admin_access import TenantAdmin, actor_for
from apps.teams.models import GatewayUser, Team

_SESSION_KEY = "new_virtual_keys"
# Fields of the form that go to the issue service as they are.
_ISSUE_FIELDS = (
    "key_alias",
    "organization",
    "budget",
    "allowed_models",
    "aliases",
    "max_budget",
    "soft_budget",
    "budget_duration",
    "rpm_limit",
    "tpm_limit",
    "max_parallel_requests",
    "model_max_budget",
    "expires_at",
    "blocked",
    "metadata",
)


class VirtualKeyForm(forms.ModelForm):  # type: ignore[type-arg]
    class Meta:
        model = VirtualKey
        fields = ("team", "user", *_ISSUE_FIELDS)


def _remember(request: HttpRequest, shown: list[tuple[str, str]]) -> str:
    """Keep new raw keys in the session (stored server-side) under a one-time ticket."""
    ticket = secrets.token_urlsafe(16)
    pending = dict(request.session.get(_SESSION_KEY, {}))
    pending[ticket] = [list(pair) for pair in shown]
    request.session[_SESSION_KEY] = pending
    return ticket


@admin.register(VirtualKey)
class VirtualKeyAdmin(TenantAdmin):
    scope = staticmethod(access.keys)
    form = VirtualKeyForm
    list_display = (
        "key_display",
        "key_alias",
        "team",
        "user",
        "spend",
        "max_budget",
        "expires_at",
        "blocked",
        "created_at",
    )
    list_filter = ("blocked", "team")
    list_select_related = ("team", "user")
    search_fields = ("key_alias", "key_display", "user__user_id")
    readonly_fields = ("key_display", "spend", "model_spend", "created_at", "updated_at")
    actions = ("block_keys", "unblock_keys", "regenerate_keys")

    def has_add_permission(self, request: HttpRequest) -> bool:
        actor = actor_for(request)
        return actor.is_proxy_admin or bool(actor.writer_team_ids() or actor.admin_org_ids())

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        """Owners who do not administer the key's team change its labels only (as on the API)."""
        actor = actor_for(request)
        if obj is None or access.administers_team(actor, obj.team):
            return self.readonly_fields
        editable = {"key_alias", "metadata", "aliases", "allowed_models"}
        return tuple(f for f in ("team", "user", *_ISSUE_FIELDS) if f not in editable) + tuple(
            self.readonly_fields
        )

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        actor = actor_for(request)
        if not actor.is_proxy_admin:
            if db_field.name == "team":
                kwargs["queryset"] = access.teams(actor)
            elif db_field.name == "user":
                kwargs["queryset"] = access.users(actor)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request: HttpRequest, obj: VirtualKey, form: Any, change: bool) -> None:
        actor = actor_for(request)
        data = form.cleaned_data
        # Fields shown read-only are not in the form: they keep the key's values.
        team: Team | None = data.get("team", obj.team)
        user: GatewayUser | None = data.get("user", obj.user)
        if not access.may_create_key(actor, team=team, for_user=user):
            raise PermissionDenied
        if change:
            stored = VirtualKey.objects.get(pk=obj.pk)  # the form already changed ``obj``
            changes = {name: data.get(name) for name in form.changed_data}
            for name in ("aliases", "model_max_budget", "metadata", "allowed_models"):
                if name in changes and changes[name] is None:
                    changes[name] = [] if name == "allowed_models" else {}
            services.key_update(key=stored, changes=changes, actor=actor.label, source="admin")
            return
        fields = {name: data[name] for name in _ISSUE_FIELDS if name in data}
        for name in ("aliases", "model_max_budget", "metadata"):
            if fields.get(name) is None:
                fields[name] = {}
        fields["models"] = fields.pop("allowed_models", None) or []
        key, raw = services.key_issue(
            team=team, user=user, actor=actor.label, source="admin", **fields
        )
        obj.pk = key.pk
        obj.digest = key.digest
        obj.key_display = key.key_display
        request._new_key_ticket = _remember(request, [(str(key), raw)])  # type: ignore[attr-defined]

    def response_add(
        self, request: HttpRequest, obj: VirtualKey, post_url_continue: Any = None
    ) -> HttpResponse:
        ticket = getattr(request, "_new_key_ticket", None)
        if ticket:
            return HttpResponseRedirect(reverse("admin:keys_virtualkey_shown", args=[ticket]))
        return super().response_add(request, obj, post_url_continue)

    def get_urls(self) -> list[Any]:
        shown = path(
            "shown/<str:ticket>/",
            self.admin_site.admin_view(self.shown_view),
            name="keys_virtualkey_shown",
        )
        return [shown, *super().get_urls()]

    def shown_view(self, request: HttpRequest, ticket: str) -> HttpResponse:
        """The new keys of ``ticket``, once: the session forgets them as they are shown."""
        pending = dict(request.session.get(_SESSION_KEY, {}))
        shown = pending.pop(ticket, None)
        request.session[_SESSION_KEY] = pending
        context = {
            **self.admin_site.each_context(request),
            "title": "Copy the new key now",
            "keys": shown or [],
            "gone": shown is None,
            "opts": self.model._meta,
        }
        response = render(request, "admin/keys/virtualkey/shown.html", context)
        response["Cache-Control"] = "no-store"
        return response

    def _change_each(
        self, request: HttpRequest, queryset: QuerySet[VirtualKey]
    ) -> list[VirtualKey]:
        keys = list(queryset)
        for key in keys:
            if not self.has_change_permission(request, key):
                raise PermissionDenied
        return keys

    @admin.action(description="Block selected keys")
    def block_keys(self, request: HttpRequest, queryset: QuerySet[VirtualKey]) -> None:
        for key in self._change_each(request, queryset):
            services.key_block(
                key=key, blocked=True, actor=actor_for(request).label, source="admin"
            )

    @admin.action(description="Unblock selected keys")
    def unblock_keys(self, request: HttpRequest, queryset: QuerySet[VirtualKey]) -> None:
        for key in self._change_each(request, queryset):
            services.key_block(
                key=key, blocked=False, actor=actor_for(request).label, source="admin"
            )

    @admin.action(description="Regenerate selected keys (the old secret stops working)")
    def regenerate_keys(self, request: HttpRequest, queryset: QuerySet[VirtualKey]) -> HttpResponse:
        shown = []
        for key in self._change_each(request, queryset):
            _, raw = services.key_regenerate(
                key=key, actor=actor_for(request).label, source="admin"
            )
            shown.append((str(key), raw))
        if not shown:
            messages.info(request, "No keys were selected.")
            return HttpResponseRedirect(request.get_full_path())
        ticket = _remember(request, shown)
        return HttpResponseRedirect(reverse("admin:keys_virtualkey_shown", args=[ticket]))
