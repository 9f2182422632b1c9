"""/budget/* routes: reusable budgets that keys, end users and memberships reference."""

from __future__ import annotations

from typing import Any

from rest_framework.decorators import api_view, permission_classes
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from apps.core.api.schema import doc
from apps.teams import services
from apps.teams.api import serializers as s
from apps.teams.api.common import (
    Conflict,
    budget_by_id,
    label,
    limits_data,
    model_changes,
    validated,
)
from apps.teams.api.permissions import IsProxyAdmin
from apps.teams.models import Budget

TAGS = ["budget management"]


def budget_data(budget: Budget) -> dict[str, Any]:
    return {
        "budget_id": budget.budget_id,
        **limits_data(budget),
        "created_by": budget.created_by or None,
        "created_at": budget.created_at,
        "updated_at": budget.updated_at,
    }


def _fields(data: dict[str, Any]) -> dict[str, Any]:
    changes = model_changes({k: v for k, v in data.items() if k != "budget_id"})
    if "budget_reset_at" in data:
        changes["budget_reset_at"] = data["budget_reset_at"]
    return changes


@doc(tags=TAGS, request=s.BudgetSerializer)
@api_view(["POST"])
@permission_classes([IsProxyAdmin])
def budget_new(request: Request) -> Response:
    data = validated(request, s.BudgetSerializer)
    fields = _fields(data)
    if data.get("budget_id"):
        if Budget.objects.filter(budget_id=data["budget_id"]).exists():
            raise Conflict(f"Budget '{data['budget_id']}' already exists.", param="budget_id")
        fields["budget_id"] = data["budget_id"]
    budget = services.create(Budget, fields=fields, actor=label(request))
    return Response(budget_data(budget))


@doc(tags=TAGS, request=s.BudgetSerializer)
@api_view(["POST", "PATCH"])
@permission_classes([IsProxyAdmin])
def budget_update(request: Request) -> Response:
    data = validated(request, s.BudgetSerializer)
    if not data.get("budget_id"):
        raise ValidationError({"budget_id": "This field is required."})
    budget = budget_by_id(data["budget_id"])
    changes = _fields(data)
    if changes:
        budget = services.update(budget, changes=changes, actor=label(request))
    return Response(budget_data(budget))


@doc(tags=TAGS, request=s.BudgetIdsSerializer)
@api_view(["POST"])
@permission_classes([IsProxyAdmin])
def budget_info(request: Request) -> Response:
    data = validated(request, s.BudgetIdsSerializer)
    return Response([budget_data(budget_by_id(b, param="budgets")) for b in data["budgets"]])


@doc(tags=TAGS)
@api_view(["GET"])
@permission_classes([IsProxyAdmin])
def budget_list(request: Request) -> Response:
    return Response([budget_data(b) for b in Budget.objects.order_by("pk")])


@doc(tags=TAGS, request=s.BudgetIdSerializer)
@api_view(["POST", "DELETE"])
@permission_classes([IsProxyAdmin])
def budget_delete(request: Request) -> Response:
    data = validated(request, s.BudgetIdSerializer)
    budget = budget_by_id(data["id"], param="id")
    result = budget_data(budget)
    services.delete(budget, actor=label(request))
    return Response(result)
