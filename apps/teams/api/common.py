"""Small helpers every management view uses: lookups that answer 404 in the API's shape,
the permission check that answers 403, and the audit actor of a request."""

from __future__ import annotations

from typing import Any, TypeVar

from django.db import models
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request

from apps.core.errors import GatewayError, NotFound
from apps.teams import access
from apps.teams.api.permissions import actor_of
from apps.teams.models import Budget, GatewayUser, Organization, Team

M = TypeVar("M", bound=models.Model)


class Forbidden(GatewayError):
    http_status = 403
    type = "permission_error"
    code = "forbidden"


class Conflict(GatewayError):
    http_status = 409
    type = "invalid_request_error"
    code = "conflict"


def require(request: Request, action: access.Action, obj: Any) -> access.Actor:
    """The request's actor, if it may ``action`` on ``obj``; 403 otherwise."""
    actor = actor_of(request)
    if not access.may(actor, action, obj):
        name = obj._meta.verbose_name
        raise Forbidden(f"You may not {action} this {name}.")
    return actor


def found(qs: models.QuerySet[M], *, what: str, param: str, value: Any, **lookup: Any) -> M:
    obj = qs.filter(**lookup).first()
    if obj is None:
        raise NotFound(f"{what} '{value}' not found.", param=param)
    return obj


def team_by_id(team_id: str, *, param: str = "team_id") -> Team:
    qs = Team.objects.select_related("organization", "budget")
    return found(qs, what="Team", param=param, value=team_id, team_id=team_id)


def organization_by_id(organization_id: str, *, param: str = "organization_id") -> Organization:
    return found(
        Organization.objects.select_related("budget"),
        what="Organization",
        param=param,
        value=organization_id,
        organization_id=organization_id,
    )


def user_by_id(user_id: str, *, param: str = "user_id") -> GatewayUser:
    return found(
        GatewayUser.objects.select_related("budget"),
        what="User",
        param=param,
        value=user_id,
        user_id=user_id,
    )


def budget_by_id(budget_id: str, *, param: str = "budget_id") -> Budget:
    return found(
        Budget.objects.all(), what="Budget", param=param, value=budget_id, budget_id=budget_id
    )


def money(value: Any) -> float | None:
    return None if value is None else float(value)


def limits_data(obj: Any) -> dict[str, Any]:
    """The budget and limit fields of any holder, LiteLLM's names."""
    data = {
        "max_budget": money(obj.max_budget),
        "soft_budget": money(obj.soft_budget),
        "budget_duration": obj.budget_duration or None,
        "budget_reset_at": obj.budget_reset_at,
        "rpm_limit": obj.rpm_limit,
        "tpm_limit": obj.tpm_limit,
        "max_parallel_requests": obj.max_parallel_requests,
        "model_max_budget": dict(obj.model_max_budget or {}),
    }
    if hasattr(obj, "spend"):
        data["spend"] = float(obj.spend)
        data["model_spend"] = dict(obj.model_spend or {})
        data["budget_id"] = obj.budget.budget_id if obj.budget_id else None
    return data


LIMIT_NAMES = (
    "max_budget",
    "soft_budget",
    "budget_duration",
    "rpm_limit",
    "tpm_limit",
    "max_parallel_requests",
    "model_max_budget",
)


def model_changes(data: dict[str, Any], *, names: tuple[str, ...] = ()) -> dict[str, Any]:
    """Model field values from validated request ``data``: the limit fields, ``budget_id`` as
    the Budget row, ``models`` as ``allowed_models``, ``tags`` into metadata, and ``names``
    as they are. Nulls of text and JSON fields become their blank value."""
    changes: dict[str, Any] = {}
    for name in (*LIMIT_NAMES, *names):
        if name in data:
            value = data[name]
            if value is None and name in ("budget_duration", "model_max_budget"):
                value = "" if name == "budget_duration" else {}
            changes[name] = value
    for name in ("metadata", "model_aliases", "aliases"):
        if name in changes and changes[name] is None:
            changes[name] = {}
    for name in (
        "team_alias",
        "organization_alias",
        "user_alias",
        "alias",
        "key_alias",
        "user_email",
        "default_model",
        "allowed_model_region",
    ):
        if name in changes and changes[name] is None:
            changes[name] = ""
    if "models" in data:
        changes["allowed_models"] = list(data["models"] or [])
    if "budget_id" in data:
        changes["budget"] = budget_by_id(data["budget_id"]) if data["budget_id"] else None
    if data.get("tags") is not None:
        metadata = dict(changes.get("metadata") or {})
        metadata["tags"] = list(data["tags"])
        changes["metadata"] = metadata
    return changes


def validated(request: Request, serializer_class: type[Any], **kwargs: Any) -> dict[str, Any]:
    """The request body checked by ``serializer_class``; 400 with field errors otherwise."""
    data = request.data if request.method != "GET" else request.query_params
    if not isinstance(data, dict) and not hasattr(data, "getlist"):
        raise ValidationError({"body": "The request body must be a JSON object."})
    serializer = serializer_class(data=data, **kwargs)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def label(request: Request) -> str:
    """The audit actor of a request."""
    return actor_of(request).label
