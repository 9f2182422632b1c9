"""Who calls the management API: the master key, a virtual key (``Authorization: Bearer`` or
``x-litellm-api-key``), or a signed-in admin session. Each becomes an
:class:`apps.teams.access.Actor` on ``request.user``."""

from __future__ import annotations

from typing import Any

from django.utils import timezone
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from apps.keys import hashing, selectors
from apps.keys.api import schema  # noqa: F401  (registers how this authentication is documented)
from apps.keys.auth import _load_master_digests, bearer_token
from apps.teams.access import Actor, actor_for_login, actor_for_user


def _token(request: Request) -> str | None:
    meta = request.META
    return bearer_token(meta.get("HTTP_AUTHORIZATION")) or bearer_token(
        meta.get("HTTP_X_LITELLM_API_KEY")
    )


class GatewayKeyAuthentication(authentication.BaseAuthentication):
    """The master key or a virtual key. A blocked or expired key, or one of a blocked team,
    is refused (401), as on the request path."""

    def authenticate(self, request: Request) -> tuple[Actor, str] | None:
        raw = _token(request)
        if raw is None:
            return None
        digest = hashing.digest(raw)
        if digest in _load_master_digests():
            return Actor(kind="master", label="master"), raw
        key = selectors.key_for_raw(raw)
        if key is None:
            raise exceptions.AuthenticationFailed("Invalid API key.")
        if key.blocked or (key.team is not None and key.team.blocked):
            raise exceptions.AuthenticationFailed("This API key is blocked.")
        if key.expires_at is not None and key.expires_at <= timezone.now():
            raise exceptions.AuthenticationFailed("This API key has expired.")
        actor = actor_for_user(key.user, kind="key", label=f"key:{key.key_display}", key=key)
        return actor, raw

    def authenticate_header(self, request: Request) -> str:
        return "Bearer"


class AdminSessionAuthentication(authentication.SessionAuthentication):
    """A signed-in Django user (the admin), with CSRF checks for unsafe methods."""

    def authenticate(self, request: Request) -> tuple[Actor, Any] | None:
        result = super().authenticate(request)
        if result is None:
            return None
        django_user = result[0]
        if not django_user.is_active:
            return None
        return actor_for_login(django_user), None
