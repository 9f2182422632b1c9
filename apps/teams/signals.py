"""Tenancy changes alter what cached keys may do: tell every process."""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_delete, post_save

from apps.core import changes
from apps.teams.models import (
    Budget,
    EndUser,
    GatewayUser,
    Organization,
    OrganizationMembership,
    Team,
    TeamMembership,
)

# Writes of only these fields (the spend counters) leave cached limits and access intact.
SPEND_FIELDS = frozenset({"spend", "model_spend", "updated_at"})


def _tenancy_changed(sender: type, update_fields: Any = None, **kwargs: Any) -> None:
    if update_fields and set(update_fields) <= SPEND_FIELDS:
        return
    changes.changed(changes.TOPIC_KEYS)


for _model in (
    Organization,
    Team,
    GatewayUser,
    TeamMembership,
    OrganizationMembership,
    EndUser,
    Budget,
):
    post_save.connect(_tenancy_changed, sender=_model, dispatch_uid=f"tenancy-{_model.__name__}")
    post_delete.connect(_tenancy_changed, sender=_model, dispatch_uid=f"tenancy-{_model.__name__}")
