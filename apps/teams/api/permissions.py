"""DRF permission classes over :mod:`apps.teams.access`."""

from __future__ import annotations

from typing import Any

from rest_framework import permissions
from rest_framework.request import Request

from apps.teams import access


def actor_of(request: Request) -> access.Actor:
    user = request.user
    assert isinstance(user, access.Actor)
    return user


class IsActor(permissions.BasePermission):
    """Any authenticated management caller; object rules come from ``access.may``."""

    message = "You may not do this."

    def has_permission(self, request: Request, view: Any) -> bool:
        return isinstance(request.user, access.Actor)

    def has_object_permission(self, request: Request, view: Any, obj: Any) -> bool:
        action: access.Action = "view" if request.method in permissions.SAFE_METHODS else "change"
        return access.may(actor_of(request), action, obj)


class IsProxyAdmin(permissions.BasePermission):
    """Proxy admins; proxy admin viewers for reads."""

    message = "Only a proxy admin may do this."

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        if not isinstance(user, access.Actor):
            return False
        if request.method in permissions.SAFE_METHODS:
            return user.is_proxy_viewer
        return user.is_proxy_admin
