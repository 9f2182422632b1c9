"""/user/* routes: internal users, their teams and keys."""

from __future__ import annotations

import math
from typing import Any

from django.db import transaction
from drf_spectacular.utils import OpenApiParameter
from rest_framework.decorators import api_view, permission_classes
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from apps.core.api.schema import doc
from apps.keys import selectors
from apps.keys import services as key_services
from apps.keys.api.serializers import key_data
from apps.keys.api.teams import API_ROLE, team_data
from apps.teams import access, services
from apps.teams.api import serializers as s
from apps.teams.api.common import (
    Conflict,
    Forbidden,
    found,
    label,
    limits_data,
    model_changes,
    organization_by_id,
    require,
    team_by_id,
    user_by_id,
    validated,
)
from apps.teams.api.permissions import IsActor, actor_of
from apps.teams.models import GatewayUser, OrganizationRole, UserRole

TAGS = ["internal user management"]
NAMES = ("user_alias", "user_email", "user_role", "metadata")


def user_data(user: GatewayUser) -> dict[str, Any]:
    return {
        "user_id": user.user_id,
        "user_alias": user.user_alias or None,
        "user_email": user.user_email or None,
        "user_role": user.user_role,
        "models": list(user.allowed_models or []),
        "metadata": dict(user.metadata or {}),
        **limits_data(user),
        "teams": [m.team.team_id for m in user.team_memberships.select_related("team")],
        "organization_memberships": [
            {"organization_id": m.organization.organization_id, "user_role": m.role}
            for m in user.organization_memberships.select_related("organization")
        ],
        "created_by": user.created_by or None,
        "created_at": user.created_at,
        "updated_at": user.updated_at,
    }


def _check_role(actor: access.Actor, role: str | None) -> None:
    if role in (UserRole.PROXY_ADMIN, UserRole.PROXY_ADMIN_VIEWER) and not actor.is_proxy_admin:
        raise Forbidden("Only a proxy admin may give proxy admin roles.", param="user_role")


@doc(tags=TAGS, request=s.NewUserSerializer)
@api_view(["POST"])
@permission_classes([IsActor])
def user_new(request: Request) -> Response:
    actor = actor_of(request)
    data = validated(request, s.NewUserSerializer)
    orgs = [organization_by_id(o, param="organizations") for o in data.get("organizations") or []]
    teams = [(team_by_id(t["team_id"], param="teams"), t) for t in data.get("teams") or []]
    if not actor.is_proxy_admin:
        if not actor.admin_org_ids() or actor.read_only:
            raise Forbidden("Only a proxy admin or an organization admin may create users.")
        if any(org.pk not in actor.admin_org_ids() for org in orgs):
            raise Forbidden("You may only add users to your organizations.", param="organizations")
        if not orgs and not teams:
            raise Forbidden("Name one of your organizations or teams.", param="organizations")
    for team, _ in teams:
        require(request, "change", team)
    _check_role(actor, data.get("user_role"))
    who = label(request)
    fields = model_changes(data, names=NAMES)
    if data.get("user_id"):
        if GatewayUser.objects.filter(user_id=data["user_id"]).exists():
            raise Conflict(f"User '{data['user_id']}' already exists.", param="user_id")
        fields["user_id"] = data["user_id"]
    with transaction.atomic():
        user = services.create(GatewayUser, fields=fields, actor=who)
        for org in orgs:
            services.organization_member_set(
                organization=org, user=user, role=OrganizationRole.INTERNAL_USER, actor=who
            )
        for team, spec in teams:
            services.team_member_set(
                team=team,
                user=user,
                role=services.API_TEAM_ROLES[spec["user_role"]],
                max_budget=spec["max_budget_in_team"],
                actor=who,
            )
        body = user_data(user)
        if data.get("auto_create_key", True):
            key, raw = key_services.key_issue(
                user=user,
                key_alias=data.get("key_alias") or "",
                models=data.get("models") or [],
                expires_at=key_services.expiry_for(data.get("duration")),
                actor=who,
            )
            body.update({"key": raw, "token": key.digest, "key_name": key.key_display})
            body["expires"] = key.expires_at
        else:
            body.update({"key": None, "token": None})
    return Response(body)


def _target(data: dict[str, Any]) -> GatewayUser:
    if data.get("user_id"):
        return user_by_id(data["user_id"])
    return found(
        GatewayUser.objects.all(),
        what="User",
        param="user_email",
        value=data["user_email"],
        user_email__iexact=data["user_email"],
    )


@doc(tags=TAGS, request=s.UpdateUserSerializer)
@api_view(["POST", "PATCH"])
@permission_classes([IsActor])
def user_update(request: Request) -> Response:
    actor = actor_of(request)
    data = validated(request, s.UpdateUserSerializer)
    user = _target(data)
    require(request, "change", user)
    if not data.get("user_id"):
        data.pop("user_email", None)  # the email named the user: it is not a change
    changes = model_changes(
        {k: v for k, v in data.items() if k != "user_id"}, names=(*NAMES, "spend")
    )
    if "user_role" in changes:
        if not actor.is_proxy_admin:
            raise Forbidden("Only a proxy admin may change roles.", param="user_role")
        if changes["user_role"] is None:
            changes.pop("user_role")
    if "spend" in changes and not actor.is_proxy_admin:
        raise Forbidden("Only a proxy admin may set spend.", param="spend")
    if changes:
        user = services.update(user, changes=changes, actor=label(request))
    return Response(user_data(user))


@doc(tags=TAGS, parameters=[OpenApiParameter("user_id", str)])
@api_view(["GET"])
@permission_classes([IsActor])
def user_info(request: Request) -> Response:
    actor = actor_of(request)
    user_id = request.query_params.get("user_id") or ""
    if user_id:
        user = user_by_id(user_id)
    elif actor.user is not None:
        user = actor.user
    else:
        raise ValidationError({"user_id": "Give the user to look up (?user_id=...)."})
    require(request, "view", user)
    keys = access.keys(actor, selectors.key_queryset()).filter(user=user).order_by("pk")
    teams = []
    for membership in user.team_memberships.select_related("team", "team__organization", "budget"):
        team = membership.team
        if access.may_team(actor, "view", team) or membership.user_id == getattr(
            actor.user, "pk", None
        ):
            teams.append(
                {
                    **team_data(team),
                    "membership": {
                        "role": API_ROLE.get(membership.role),
                        **limits_data(membership),
                    },
                }
            )
    return Response(
        {
            "user_id": user.user_id,
            "user_info": user_data(user),
            "keys": [key_data(k) for k in keys],
            "teams": teams,
        }
    )


@doc(
    tags=TAGS,
    parameters=[
        OpenApiParameter("page", int),
        OpenApiParameter("page_size", int),
        OpenApiParameter("role", str),
        OpenApiParameter("user_ids", str, description="Comma-separated"),
    ],
)
@api_view(["GET"])
@permission_classes([IsActor])
def user_list(request: Request) -> Response:
    params = request.query_params
    try:
        page = int(params.get("page") or 1)
        size = int(params.get("page_size") or 25)
    except ValueError:
        raise ValidationError({"page": "page and page_size must be whole numbers."}) from None
    if page < 1 or not 1 <= size <= 100:
        raise ValidationError({"page_size": "page must be >= 1 and page_size between 1 and 100."})
    qs = access.users(actor_of(request))
    if params.get("role"):
        qs = qs.filter(user_role=params["role"])
    if params.get("user_ids"):
        qs = qs.filter(user_id__in=[u for u in params["user_ids"].split(",") if u])
    total = qs.count()
    rows = qs.order_by("pk")[(page - 1) * size : page * size]
    return Response(
        {
            "users": [user_data(u) for u in rows],
            "total": total,
            "page": page,
            "page_size": size,
            "total_pages": max(1, math.ceil(total / size)),
        }
    )


@doc(tags=TAGS, request=s.UserIdsSerializer)
@api_view(["POST", "DELETE"])
@permission_classes([IsActor])
def user_delete(request: Request) -> Response:
    data = validated(request, s.UserIdsSerializer)
    users = [user_by_id(u, param="user_ids") for u in data["user_ids"]]
    for user in users:
        require(request, "delete", user)
    who = label(request)
    with transaction.atomic():
        for user in users:
            for key in list(user.keys.all()):
                key_services.key_delete(key=key, actor=who)
            services.delete(user, actor=who)
    return Response({"deleted_users": data["user_ids"]})
