"""/organization/* routes."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter
from rest_framework.decorators import api_view, permission_classes
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from apps.core.api.schema import doc
from apps.teams import access, services
from apps.teams.api import serializers as s
from apps.teams.api.common import (
    Conflict,
    Forbidden,
    label,
    limits_data,
    model_changes,
    organization_by_id,
    require,
    validated,
)
from apps.teams.api.permissions import IsActor, IsProxyAdmin, actor_of
from apps.teams.models import Organization, OrganizationRole

TAGS = ["organization management"]
# What an organization admin may change on their organization; the rest is the proxy admins'.
ORG_ADMIN_FIELDS = frozenset({"organization_alias", "metadata"})


def organization_data(org: Organization, *, members: bool = True) -> dict[str, Any]:
    data: dict[str, Any] = {
        "organization_id": org.organization_id,
        "organization_alias": org.organization_alias,
        "models": list(org.allowed_models or []),
        "blocked": org.blocked,
        "metadata": dict(org.metadata or {}),
        **limits_data(org),
        "created_by": org.created_by or None,
        "created_at": org.created_at,
        "updated_at": org.updated_at,
    }
    if members:
        data["teams"] = [
            {"team_id": t.team_id, "team_alias": t.team_alias} for t in org.teams.order_by("pk")
        ]
        data["members"] = [
            {
                "user_id": m.user.user_id,
                "user_email": m.user.user_email or None,
                "user_role": m.role,
                **limits_data(m),
            }
            for m in org.memberships.select_related("user", "budget").order_by("pk")
        ]
    return data


@doc(tags=TAGS, request=s.NewOrganizationSerializer)
@api_view(["POST"])
@permission_classes([IsProxyAdmin])
def organization_new(request: Request) -> Response:
    data = validated(request, s.NewOrganizationSerializer)
    fields = model_changes(data, names=("organization_alias", "blocked", "metadata"))
    if data.get("organization_id"):
        fields["organization_id"] = data["organization_id"]
        if Organization.objects.filter(organization_id=data["organization_id"]).exists():
            raise Conflict(
                f"Organization '{data['organization_id']}' already exists.",
                param="organization_id",
            )
    org = services.create(Organization, fields=fields, actor=label(request))
    return Response(organization_data(org))


@doc(tags=TAGS, request=s.UpdateOrganizationSerializer)
@api_view(["PATCH", "POST"])
@permission_classes([IsActor])
def organization_update(request: Request) -> Response:
    data = validated(request, s.UpdateOrganizationSerializer)
    org = organization_by_id(data["organization_id"])
    actor = require(request, "change", org)
    changes = model_changes(data, names=("organization_alias", "blocked", "metadata"))
    extra = sorted(set(changes) - ORG_ADMIN_FIELDS)
    if extra and not actor.is_proxy_admin:
        raise Forbidden(f"Only a proxy admin may change {', '.join(extra)}.", param=extra[0])
    if changes:
        org = services.update(org, changes=changes, actor=label(request))
    return Response(organization_data(org))


@doc(tags=TAGS, request=s.OrganizationIdsSerializer)
@api_view(["DELETE", "POST"])
@permission_classes([IsProxyAdmin])
def organization_delete(request: Request) -> Response:
    data = validated(request, s.OrganizationIdsSerializer)
    orgs = [organization_by_id(i, param="organization_ids") for i in data["organization_ids"]]
    deleted = []
    for org in orgs:
        deleted.append(organization_data(org, members=False))
        services.delete(org, actor=label(request))
    return Response({"deleted_organizations": deleted})


@doc(
    tags=TAGS,
    parameters=[OpenApiParameter("organization_id", str, required=True)],
)
@api_view(["GET"])
@permission_classes([IsActor])
def organization_info(request: Request) -> Response:
    org_id = request.query_params.get("organization_id") or ""
    if not org_id:
        raise ValidationError({"organization_id": "This query parameter is required."})
    org = organization_by_id(org_id)
    require(request, "view", org)
    return Response(organization_data(org))


@doc(tags=TAGS)
@api_view(["GET"])
@permission_classes([IsActor])
def organization_list(request: Request) -> Response:
    orgs = access.organizations(actor_of(request)).select_related("budget").order_by("pk")
    return Response([organization_data(o) for o in orgs])


@doc(tags=TAGS, request=s.OrganizationMemberAddSerializer)
@api_view(["POST"])
@permission_classes([IsActor])
def organization_member_add(request: Request) -> Response:
    data = validated(request, s.OrganizationMemberAddSerializer)
    org = organization_by_id(data["organization_id"])
    actor = require(request, "change", org)
    who = label(request)
    added = []
    for member in data["member"]:
        if not access.may_add_member(
            actor,
            user_id=member.get("user_id"),
            user_email=member.get("user_email"),
            organization_id=org.pk,
        ):
            raise Forbidden("That user belongs to another tenant.", param="member")
    for member in data["member"]:
        role = member.get("role") or OrganizationRole.INTERNAL_USER
        if role == OrganizationRole.ORG_ADMIN and not actor.is_proxy_admin:
            raise Forbidden("Only a proxy admin may add organization admins.", param="member")
        user = services.user_for_member(
            user_id=member.get("user_id"), user_email=member.get("user_email"), actor=who
        )
        membership = services.organization_member_set(
            organization=org,
            user=user,
            role=role,
            max_budget=data.get("max_budget_in_organization"),
            actor=who,
        )
        added.append(
            {
                "user_id": user.user_id,
                "user_email": user.user_email or None,
                "user_role": membership.role,
            }
        )
    return Response(
        {"organization_id": org.organization_id, "updated_organization_memberships": added}
    )
