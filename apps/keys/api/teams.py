"""/team/* routes. Team admins manage their team's members and labels; budgets, limits, model
access and blocking are set by the team's organization admins or proxy admins."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter
from rest_framework.decorators import api_view, permission_classes
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from apps.core.api.schema import doc
from apps.core.errors import NotFound
from apps.keys import selectors
from apps.keys.api.serializers import key_data
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
    team_by_id,
    validated,
)
from apps.teams.api.permissions import IsActor, actor_of
from apps.teams.models import Team, TeamMembership

TAGS = ["team management"]
# What a team admin may change on their own team; the rest needs an org or proxy admin.
TEAM_ADMIN_FIELDS = frozenset({"team_alias", "metadata", "model_aliases"})
API_ROLE = {"admin": "admin", "member": "user", "viewer": "viewer"}


def membership_data(m: TeamMembership) -> dict[str, Any]:
    return {
        "user_id": m.user.user_id,
        "user_email": m.user.user_email or None,
        "team_id": m.team.team_id,
        "role": API_ROLE.get(m.role, m.role),
        **limits_data(m),
    }


def team_data(team: Team) -> dict[str, Any]:
    memberships = list(team.memberships.select_related("user", "team", "budget").order_by("pk"))
    return {
        "team_id": team.team_id,
        "team_alias": team.team_alias or None,
        "organization_id": team.organization.organization_id if team.organization else None,
        "models": list(team.allowed_models or []),
        "blocked": team.blocked,
        "metadata": dict(team.metadata or {}),
        "model_aliases": dict(team.model_aliases or {}),
        **limits_data(team),
        "members_with_roles": [
            {
                "user_id": m.user.user_id,
                "user_email": m.user.user_email or None,
                "role": API_ROLE.get(m.role, m.role),
            }
            for m in memberships
        ],
        "team_memberships": [membership_data(m) for m in memberships],
        "created_by": team.created_by or None,
        "created_at": team.created_at,
        "updated_at": team.updated_at,
    }


def _org_level(actor: access.Actor, team: Team) -> bool:
    """Proxy admins and the admins of the team's organization."""
    return actor.is_proxy_admin or (
        team.organization_id is not None and team.organization_id in actor.admin_org_ids()
    )


def _add_members(
    team: Team, members: list[dict[str, Any]], *, request: Request, budget: Any = None
) -> None:
    who = label(request)
    actor = actor_of(request)
    for member in members:
        if not access.may_add_member(
            actor,
            user_id=member.get("user_id"),
            user_email=member.get("user_email"),
            organization_id=team.organization_id,
        ):
            raise Forbidden("That user belongs to another tenant.", param="member")
    for member in members:
        user = services.user_for_member(
            user_id=member.get("user_id"), user_email=member.get("user_email"), actor=who
        )
        role = services.API_TEAM_ROLES[member.get("role") or "user"]
        services.team_member_set(team=team, user=user, role=role, max_budget=budget, actor=who)


@doc(tags=TAGS, request=s.NewTeamSerializer)
@api_view(["POST"])
@permission_classes([IsActor])
def team_new(request: Request) -> Response:
    actor = actor_of(request)
    data = validated(request, s.NewTeamSerializer)
    org = organization_by_id(data["organization_id"]) if data.get("organization_id") else None
    if not actor.is_proxy_admin and (org is None or org.pk not in actor.admin_org_ids()):
        raise Forbidden(
            "Only a proxy admin, or an admin of the team's organization, may create teams."
        )
    fields = model_changes(data, names=("team_alias", "blocked", "metadata", "model_aliases"))
    fields["organization"] = org
    if data.get("team_id"):
        if Team.objects.filter(team_id=data["team_id"]).exists():
            raise Conflict(f"Team '{data['team_id']}' already exists.", param="team_id")
        fields["team_id"] = data["team_id"]
    team = services.create(Team, fields=fields, actor=label(request))
    _add_members(team, data.get("members_with_roles") or [], request=request)
    return Response(team_data(team))


@doc(tags=TAGS, request=s.UpdateTeamSerializer)
@api_view(["POST", "PATCH"])
@permission_classes([IsActor])
def team_update(request: Request) -> Response:
    actor = actor_of(request)
    data = validated(request, s.UpdateTeamSerializer)
    team = team_by_id(data["team_id"])
    require(request, "change", team)
    changes = model_changes(data, names=("team_alias", "blocked", "metadata", "model_aliases"))
    if "organization_id" in data:
        org_id = data["organization_id"]
        changes["organization"] = organization_by_id(org_id) if org_id else None
        if not actor.is_proxy_admin:
            raise Forbidden("Only a proxy admin may move a team.", param="organization_id")
    extra = sorted(set(changes) - TEAM_ADMIN_FIELDS)
    if extra and not _org_level(actor, team):
        raise Forbidden(
            f"Only an organization or proxy admin may change {', '.join(extra)}.", param=extra[0]
        )
    if changes:
        team = services.update(team, changes=changes, actor=label(request))
    return Response(team_data(team))


@doc(tags=TAGS, request=s.TeamIdsSerializer)
@api_view(["POST", "DELETE"])
@permission_classes([IsActor])
def team_delete(request: Request) -> Response:
    data = validated(request, s.TeamIdsSerializer)
    teams = [team_by_id(t, param="team_ids") for t in data["team_ids"]]
    for team in teams:
        require(request, "delete", team)
    for team in teams:
        services.delete(team, actor=label(request))
    return Response({"deleted_teams": data["team_ids"]})


@doc(tags=TAGS, parameters=[OpenApiParameter("team_id", str, required=True)])
@api_view(["GET"])
@permission_classes([IsActor])
def team_info(request: Request) -> Response:
    team_id = request.query_params.get("team_id") or ""
    if not team_id:
        raise ValidationError({"team_id": "This query parameter is required."})
    team = team_by_id(team_id)
    actor = require(request, "view", team)
    keys = access.keys(actor, selectors.key_queryset()).filter(team=team).order_by("pk")
    info = team_data(team)
    return Response(
        {
            "team_id": team.team_id,
            "team_info": info,
            "keys": [key_data(k) for k in keys],
            "team_memberships": info["team_memberships"],
        }
    )


@doc(
    tags=TAGS,
    parameters=[OpenApiParameter("user_id", str), OpenApiParameter("organization_id", str)],
)
@api_view(["GET"])
@permission_classes([IsActor])
def team_list(request: Request) -> Response:
    qs = access.teams(actor_of(request)).select_related("organization", "budget")
    if request.query_params.get("user_id"):
        qs = qs.filter(memberships__user__user_id=request.query_params["user_id"])
    if request.query_params.get("organization_id"):
        qs = qs.filter(organization__organization_id=request.query_params["organization_id"])
    return Response([team_data(t) for t in qs.distinct().order_by("pk")])


def _set_blocked(request: Request, blocked: bool) -> Response:
    data = validated(request, s.TeamIdSerializer)
    team = team_by_id(data["team_id"])
    actor = require(request, "view", team)
    if not _org_level(actor, team):
        raise Forbidden("Only an organization or proxy admin may block or unblock a team.")
    team = services.update(
        team,
        changes={"blocked": blocked},
        actor=label(request),
        action="blocked" if blocked else "unblocked",
    )
    return Response(team_data(team))


@doc(tags=TAGS, request=s.TeamIdSerializer)
@api_view(["POST"])
@permission_classes([IsActor])
def team_block(request: Request) -> Response:
    return _set_blocked(request, True)


@doc(tags=TAGS, request=s.TeamIdSerializer)
@api_view(["POST"])
@permission_classes([IsActor])
def team_unblock(request: Request) -> Response:
    return _set_blocked(request, False)


@doc(tags=TAGS, request=s.TeamMemberAddSerializer)
@api_view(["POST"])
@permission_classes([IsActor])
def team_member_add(request: Request) -> Response:
    data = validated(request, s.TeamMemberAddSerializer)
    team = team_by_id(data["team_id"])
    require(request, "change", team)
    _add_members(team, data["member"], request=request, budget=data.get("max_budget_in_team"))
    return Response(team_data(team_by_id(team.team_id)))


@doc(tags=TAGS, request=s.TeamMemberDeleteSerializer)
@api_view(["POST"])
@permission_classes([IsActor])
def team_member_delete(request: Request) -> Response:
    data = validated(request, s.TeamMemberDeleteSerializer)
    team = team_by_id(data["team_id"])
    require(request, "change", team)
    memberships = TeamMembership.objects.filter(team=team).select_related("user")
    if data.get("user_id"):
        memberships = memberships.filter(user__user_id=data["user_id"])
    else:
        memberships = memberships.filter(user__user_email__iexact=data["user_email"])
    found = list(memberships)
    if not found:
        param = "user_id" if data.get("user_id") else "user_email"
        raise NotFound("That user is not a member of this team.", param=param)
    for membership in found:
        services.delete(membership, actor=label(request))
    return Response(team_data(team))


def _models(request: Request, add: bool) -> Response:
    data = validated(request, s.TeamModelsSerializer)
    team = team_by_id(data["team_id"])
    actor = require(request, "view", team)
    if not _org_level(actor, team):
        raise Forbidden("Only an organization or proxy admin may change a team's models.")
    models = list(team.allowed_models or [])
    for name in data["models"]:
        if add and name not in models:
            models.append(name)
        if not add and name in models:
            models.remove(name)
    team = services.update(team, changes={"allowed_models": models}, actor=label(request))
    return Response(team_data(team))


@doc(tags=TAGS, request=s.TeamModelsSerializer)
@api_view(["POST"])
@permission_classes([IsActor])
def team_model_add(request: Request) -> Response:
    return _models(request, True)


@doc(tags=TAGS, request=s.TeamModelsSerializer)
@api_view(["POST"])
@permission_classes([IsActor])
def team_model_delete(request: Request) -> Response:
    return _models(request, False)
