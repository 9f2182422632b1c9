"""Writes of organizations, teams, users, memberships, end users and budgets, each audited."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import models, transaction
from django.utils import timezone

from apps.core import audit
from apps.core.durations import parse_duration
from apps.teams.models import GatewayUser, OrganizationMembership, TeamMembership


def apply_fields(obj: models.Model, changes: dict[str, Any], *, allowed: Iterable[str]) -> None:
    """Set ``changes`` on ``obj`` (not saved). A new ``budget_duration`` restarts the period:
    ``budget_reset_at`` becomes one period from now (blank duration: no reset)."""
    names = set(allowed)
    unknown = set(changes) - names
    if unknown:
        raise ValueError(f"cannot set {', '.join(sorted(unknown))}")
    for name, value in changes.items():
        setattr(obj, name, value)
    if "budget_duration" in changes:
        duration = changes["budget_duration"] or ""
        obj.budget_reset_at = parse_duration(duration).after(timezone.now()) if duration else None  # type: ignore[attr-defined]


def create(
    model: type[models.Model],
    *,
    fields: dict[str, Any],
    actor: str,
    source: str = "api",
) -> Any:
    """Create a row of ``model`` from ``fields`` and audit it."""
    with transaction.atomic():
        obj = model()
        apply_fields(obj, fields, allowed=fields.keys())
        if hasattr(obj, "created_by") and not getattr(obj, "created_by", ""):
            obj.created_by = actor
        obj.save()
        audit.record(
            actor=actor, source=source, action="created", obj=obj, after=audit.snapshot(obj)
        )
    return obj


def update(
    obj: models.Model,
    *,
    changes: dict[str, Any],
    actor: str,
    source: str = "api",
    action: str = "updated",
) -> Any:
    with transaction.atomic():
        before = audit.snapshot(obj)
        apply_fields(obj, changes, allowed=changes.keys())
        obj.save()
        audit.record(
            actor=actor,
            source=source,
            action=action,
            obj=obj,
            before=before,
            after=audit.snapshot(obj),
        )
    return obj


def delete(obj: models.Model, *, actor: str, source: str = "api") -> None:
    with transaction.atomic():
        before = audit.snapshot(obj)
        object_type, object_id = obj._meta.model_name or "", str(obj.pk)
        obj.delete()
        audit.record(
            actor=actor,
            source=source,
            action="deleted",
            object_type=object_type,
            object_id=object_id,
            before=before,
        )


# --- memberships ----------------------------------------------------------------------------

API_TEAM_ROLES = {"admin": "admin", "user": "member", "member": "member", "viewer": "viewer"}


def user_for_member(*, user_id: str | None, user_email: str | None, actor: str) -> Any:
    """The internal user a membership request names, created when new (as LiteLLM does)."""
    if user_id:
        user = GatewayUser.objects.filter(user_id=user_id).first()
        if user is None:
            user = create(
                GatewayUser,
                fields={"user_id": user_id, "user_email": user_email or ""},
                actor=actor,
            )
        return user
    user = GatewayUser.objects.filter(user_email__iexact=user_email).order_by("pk").first()
    if user is None:
        user = create(GatewayUser, fields={"user_email": user_email or ""}, actor=actor)
    return user


def team_member_set(
    *, team: Any, user: Any, role: str, max_budget: Any = None, actor: str, source: str = "api"
) -> Any:
    """Add ``user`` to ``team`` with ``role`` (admin, member, viewer), or change their role."""
    with transaction.atomic():
        membership = TeamMembership.objects.select_for_update().filter(team=team, user=user).first()
        fields: dict[str, Any] = {"role": role}
        if max_budget is not None:
            fields["max_budget"] = max_budget
        if membership is None:
            return create(
                TeamMembership,
                fields={"team": team, "user": user, **fields},
                actor=actor,
                source=source,
            )
        return update(membership, changes=fields, actor=actor, source=source)


def organization_member_set(
    *,
    organization: Any,
    user: Any,
    role: str,
    max_budget: Any = None,
    actor: str,
    source: str = "api",
) -> Any:
    with transaction.atomic():
        membership = (
            OrganizationMembership.objects.select_for_update()
            .filter(organization=organization, user=user)
            .first()
        )
        fields: dict[str, Any] = {"role": role}
        if max_budget is not None:
            fields["max_budget"] = max_budget
        if membership is None:
            return create(
                OrganizationMembership,
                fields={"organization": organization, "user": user, **fields},
                actor=actor,
                source=source,
            )
        return update(membership, changes=fields, actor=actor, source=source)
