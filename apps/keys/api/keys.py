"""/key/* routes: issue, inspect, change, block, regenerate and delete virtual keys."""

from __future__ import annotations

import math
from typing import Any

from drf_spectacular.utils import OpenApiParameter
from rest_framework.decorators import api_view, permission_classes
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from apps.core.api.schema import doc
from apps.core.errors import NotFound
from apps.keys import selectors, services
from apps.keys.api import serializers as s
from apps.keys.models import VirtualKey
from apps.teams import access
from apps.teams.api.common import (
    Forbidden,
    label,
    model_changes,
    organization_by_id,
    require,
    team_by_id,
    validated,
)
from apps.teams.api.permissions import IsActor, actor_of
from apps.teams.models import GatewayUser

TAGS = ["key management"]
# What the owner of a key may change without being an admin of its team.
OWNER_FIELDS = frozenset({"key_alias", "metadata", "aliases", "allowed_models"})


def _org_admin_of_key(actor: access.Actor, key: VirtualKey) -> bool:
    return key.organization_id is not None and key.organization_id in actor.admin_org_ids()


def key_for(ref: str, *, param: str = "key") -> VirtualKey:
    key = selectors.key_for_ref(ref)
    if key is None:
        raise NotFound("Key not found.", param=param)
    return key


def _owner(user_id: str | None, *, actor: access.Actor) -> GatewayUser | None:
    if not user_id:
        return None
    user = GatewayUser.objects.filter(user_id=user_id).first()
    if user is None:
        if not actor.is_proxy_admin:
            raise NotFound(f"User '{user_id}' not found.", param="user_id")
        user = GatewayUser.objects.create(user_id=user_id, created_by=actor.label)
    return user


def _changes(data: dict[str, Any], *, actor: access.Actor) -> dict[str, Any]:
    """Model changes from a key request: limits, names, owner, team, organization, expiry."""
    changes = model_changes(data, names=("key_alias", "aliases", "metadata", "spend"))
    if data.get("blocked") is not None:
        changes["blocked"] = data["blocked"]
    if "duration" in data:
        try:
            changes["expires_at"] = services.expiry_for(data["duration"])
        except ValueError as exc:
            raise ValidationError({"duration": str(exc)}) from None
    if "team_id" in data:
        changes["team"] = team_by_id(data["team_id"]) if data["team_id"] else None
    if "organization_id" in data:
        org_id = data["organization_id"]
        changes["organization"] = organization_by_id(org_id) if org_id else None
    if "user_id" in data:
        changes["user"] = _owner(data["user_id"], actor=actor)
    return changes


def _check_placement(actor: access.Actor, changes: dict[str, Any], key: VirtualKey | None) -> None:
    """The team, owner and organization a key gets must be the actor's to give."""
    team = changes.get("team", key.team if key else None)
    user = changes.get("user", key.user if key else None)
    if not access.may_create_key(actor, team=team, for_user=user):
        raise Forbidden("You may not issue or move keys there.", param="team_id")
    org = changes.get("organization")
    if org is not None and not actor.is_proxy_admin and org.pk not in actor.admin_org_ids():
        raise Forbidden("You may not issue keys for this organization.", param="organization_id")
    if "spend" in changes and not actor.is_proxy_admin:
        raise Forbidden("Only a proxy admin may set spend.", param="spend")


@doc(tags=TAGS, request=s.GenerateKeySerializer)
@api_view(["POST"])
@permission_classes([IsActor])
def key_generate(request: Request) -> Response:
    actor = actor_of(request)
    data = validated(request, s.GenerateKeySerializer)
    changes = _changes(data, actor=actor)
    if "user" not in changes and not actor.is_proxy_admin:
        changes["user"] = actor.user
    _check_placement(actor, changes, None)
    changes.pop("spend", None)
    team, user = changes.pop("team", None), changes.pop("user", None)
    key, raw = services.key_issue(
        team=team, user=user, raw_key=data.get("key"), actor=label(request), **changes
    )
    return Response({**s.key_data(key), "key": raw})


@doc(tags=TAGS, request=s.UpdateKeySerializer)
@api_view(["POST", "PATCH"])
@permission_classes([IsActor])
def key_update(request: Request) -> Response:
    actor = actor_of(request)
    data = validated(request, s.UpdateKeySerializer)
    key = key_for(data.pop("key"))
    require(request, "change", key)
    changes = _changes(data, actor=actor)
    if any(name in changes for name in ("team", "user", "organization", "spend")):
        _check_placement(actor, changes, key)
    admin = access.administers_team(actor, key.team) or _org_admin_of_key(actor, key)
    if not admin and not set(changes) <= OWNER_FIELDS:
        extra = sorted(set(changes) - OWNER_FIELDS)
        raise Forbidden(
            f"Only an admin of the key's team may change {', '.join(extra)}.", param=extra[0]
        )
    if changes:
        key = services.key_update(key=key, changes=changes, actor=label(request))
    return Response(s.key_data(key))


@doc(
    tags=TAGS,
    parameters=[OpenApiParameter("key", str, description="The key or its token; default: yours")],
)
@api_view(["GET"])
@permission_classes([IsActor])
def key_info(request: Request) -> Response:
    actor = actor_of(request)
    ref = request.query_params.get("key") or ""
    if ref:
        key = key_for(ref)
    elif actor.key is not None:
        key = actor.key
    else:
        raise ValidationError({"key": "Give the key to look up (?key=sk-... or its token)."})
    require(request, "view", key)
    return Response({"key": key.digest, "info": s.key_data(key)})


@doc(
    tags=TAGS,
    parameters=[
        OpenApiParameter("page", int),
        OpenApiParameter("size", int),
        OpenApiParameter("user_id", str),
        OpenApiParameter("team_id", str),
        OpenApiParameter("organization_id", str),
        OpenApiParameter("key_alias", str),
        OpenApiParameter("return_full_object", bool),
    ],
)
@api_view(["GET"])
@permission_classes([IsActor])
def key_list(request: Request) -> Response:
    params = request.query_params
    try:
        page = int(params.get("page") or 1)
        size = int(params.get("size") or 10)
    except ValueError:
        raise ValidationError({"page": "page and size must be whole numbers."}) from None
    if page < 1 or not 1 <= size <= 100:
        raise ValidationError({"size": "page must be >= 1 and size between 1 and 100."})
    qs = access.keys(actor_of(request), selectors.key_queryset())
    for param, lookup in (
        ("user_id", "user__user_id"),
        ("team_id", "team__team_id"),
        ("organization_id", "organization__organization_id"),
        ("key_alias", "key_alias"),
    ):
        if params.get(param):
            qs = qs.filter(**{lookup: params[param]})
    total = qs.count()
    rows = list(qs.order_by("-created_at", "-pk")[(page - 1) * size : page * size])
    full = str(params.get("return_full_object", "")).lower() == "true"
    return Response(
        {
            "keys": [s.key_data(k) if full else k.digest for k in rows],
            "total_count": total,
            "current_page": page,
            "total_pages": max(1, math.ceil(total / size)),
        }
    )


@doc(tags=TAGS, request=s.DeleteKeysSerializer)
@api_view(["POST", "DELETE"])
@permission_classes([IsActor])
def key_delete(request: Request) -> Response:
    actor = actor_of(request)
    data = validated(request, s.DeleteKeysSerializer)
    targets: dict[int, VirtualKey] = {}
    for ref in data.get("keys") or []:
        key = key_for(ref, param="keys")
        require(request, "delete", key)
        targets[key.pk] = key
    for alias in data.get("key_aliases") or []:
        matches = list(access.keys(actor, selectors.key_queryset()).filter(key_alias=alias))
        if not matches:
            raise NotFound(f"No key with alias '{alias}'.", param="key_aliases")
        for key in matches:
            require(request, "delete", key)
            targets[key.pk] = key
    for key in targets.values():
        services.key_delete(key=key, actor=label(request))
    return Response({"deleted_keys": [*(data.get("keys") or []), *(data.get("key_aliases") or [])]})


def _block(request: Request, blocked: bool) -> Response:
    data = validated(request, s.KeyRefSerializer)
    key = key_for(data["key"])
    require(request, "change", key)
    actor = actor_of(request)
    if not (access.administers_team(actor, key.team) or _org_admin_of_key(actor, key)):
        raise Forbidden("Only an admin of the key's team may block or unblock it.")
    key = services.key_block(key=key, blocked=blocked, actor=label(request))
    return Response(s.key_data(key))


@doc(tags=TAGS, request=s.KeyRefSerializer)
@api_view(["POST"])
@permission_classes([IsActor])
def key_block(request: Request) -> Response:
    return _block(request, True)


@doc(tags=TAGS, request=s.KeyRefSerializer)
@api_view(["POST"])
@permission_classes([IsActor])
def key_unblock(request: Request) -> Response:
    return _block(request, False)


@doc(tags=TAGS, request=s.RegenerateKeySerializer)
@api_view(["POST"])
@permission_classes([IsActor])
def key_regenerate(request: Request, key: str | None = None) -> Response:
    actor = actor_of(request)
    data = validated(request, s.RegenerateKeySerializer) if request.data else {}
    ref = key or data.get("key") or ""
    if not ref:
        raise ValidationError({"key": "Give the key to regenerate."})
    row = key_for(ref)
    require(request, "change", row)
    changes = _changes(
        {k: v for k, v in data.items() if k not in ("key", "new_key", "grace_period")},
        actor=actor,
    )
    if changes:
        _check_placement(actor, changes, row)
        row = services.key_update(key=row, changes=changes, actor=label(request))
    row, raw = services.key_regenerate(
        key=row,
        grace_period=data.get("grace_period") or None,
        new_key=data.get("new_key"),
        actor=label(request),
    )
    return Response({**s.key_data(row), "key": raw})
