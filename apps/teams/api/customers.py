"""/customer/* routes (and their /end_user/* aliases): the end users of the gateway's clients,
the ``user`` field of a request. Proxy admins manage them; proxy admin viewers read them."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter
from rest_framework.decorators import api_view, permission_classes
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from apps.core.api.schema import doc
from apps.teams import services
from apps.teams.api import serializers as s
from apps.teams.api.common import Conflict, found, label, limits_data, model_changes, validated
from apps.teams.api.permissions import IsProxyAdmin
from apps.teams.models import EndUser

TAGS = ["customer management"]
NAMES = ("alias", "blocked", "allowed_model_region", "default_model")


def customer_data(end_user: EndUser) -> dict[str, Any]:
    limits = limits_data(end_user)
    budget = end_user.budget
    return {
        "user_id": end_user.user_id,
        "alias": end_user.alias or None,
        "blocked": end_user.blocked,
        "allowed_model_region": end_user.allowed_model_region or None,
        "default_model": end_user.default_model or None,
        **limits,
        "litellm_budget_table": limits_data(budget) if budget is not None else None,
        "created_at": end_user.created_at,
        "updated_at": end_user.updated_at,
    }


def _customer(user_id: str, param: str = "user_id") -> EndUser:
    return found(
        EndUser.objects.select_related("budget"),
        what="Customer",
        param=param,
        value=user_id,
        user_id=user_id,
    )


@doc(tags=TAGS, request=s.NewCustomerSerializer)
@api_view(["POST"])
@permission_classes([IsProxyAdmin])
def customer_new(request: Request) -> Response:
    data = validated(request, s.NewCustomerSerializer)
    if EndUser.objects.filter(user_id=data["user_id"]).exists():
        raise Conflict(f"Customer '{data['user_id']}' already exists.", param="user_id")
    fields = {"user_id": data["user_id"], **model_changes(data, names=NAMES)}
    end_user = services.create(EndUser, fields=fields, actor=label(request))
    return Response(customer_data(end_user))


@doc(tags=TAGS, request=s.UpdateCustomerSerializer)
@api_view(["POST"])
@permission_classes([IsProxyAdmin])
def customer_update(request: Request) -> Response:
    data = validated(request, s.UpdateCustomerSerializer)
    end_user = _customer(data["user_id"])
    changes = model_changes(data, names=NAMES)
    if changes:
        end_user = services.update(end_user, changes=changes, actor=label(request))
    return Response(customer_data(end_user))


@doc(
    tags=TAGS,
    parameters=[OpenApiParameter("end_user_id", str, required=True)],
)
@api_view(["GET"])
@permission_classes([IsProxyAdmin])
def customer_info(request: Request) -> Response:
    user_id = request.query_params.get("end_user_id") or request.query_params.get("user_id")
    if not user_id:
        raise ValidationError({"end_user_id": "This query parameter is required."})
    return Response(customer_data(_customer(user_id, param="end_user_id")))


@doc(tags=TAGS)
@api_view(["GET"])
@permission_classes([IsProxyAdmin])
def customer_list(request: Request) -> Response:
    rows = EndUser.objects.select_related("budget").order_by("pk")
    return Response([customer_data(e) for e in rows])


@doc(tags=TAGS, request=s.UserIdsSerializer)
@api_view(["POST", "DELETE"])
@permission_classes([IsProxyAdmin])
def customer_delete(request: Request) -> Response:
    data = validated(request, s.UserIdsSerializer)
    rows = [_customer(u, param="user_ids") for u in data["user_ids"]]
    for end_user in rows:
        services.delete(end_user, actor=label(request))
    return Response({"deleted_customers": data["user_ids"]})


def _set_blocked(request: Request, blocked: bool) -> Response:
    data = validated(request, s.UserIdsSerializer)
    rows = [_customer(u, param="user_ids") for u in data["user_ids"]]
    for end_user in rows:
        services.update(
            end_user,
            changes={"blocked": blocked},
            actor=label(request),
            action="blocked" if blocked else "unblocked",
        )
    return Response({"blocked_users" if blocked else "unblocked_users": data["user_ids"]})


@doc(tags=TAGS, request=s.UserIdsSerializer)
@api_view(["POST"])
@permission_classes([IsProxyAdmin])
def customer_block(request: Request) -> Response:
    return _set_blocked(request, True)


@doc(tags=TAGS, request=s.UserIdsSerializer)
@api_view(["POST"])
@permission_classes([IsProxyAdmin])
def customer_unblock(request: Request) -> Response:
    return _set_blocked(request, False)
