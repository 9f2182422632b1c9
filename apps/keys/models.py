from __future__ import annotations

from django.db import models

from apps.core.models import TimeStampedModel
from apps.teams.models import BudgetHolder, GatewayUser, Organization, Team


class VirtualKey(BudgetHolder, TimeStampedModel):
    """A key clients use instead of provider credentials. Only a digest of the key is stored.

    ``allowed_models``: ``[]`` means every model its team (and organization) allows, ``["*"]``
    any model the gateway can route; entries may be model groups, access groups or wildcards.
    After a regeneration with a grace period the old secret's digest stays valid until
    ``previous_digest_expires_at``.
    """

    digest = models.CharField(max_length=64, unique=True, editable=False)
    key_display = models.CharField(max_length=32, editable=False, help_text="e.g. sk-abc...wxyz")
    key_alias = models.CharField(max_length=200, blank=True, default="", db_index=True)
    team = models.ForeignKey(
        Team, null=True, blank=True, on_delete=models.CASCADE, related_name="keys"
    )
    organization = models.ForeignKey(
        Organization, null=True, blank=True, on_delete=models.CASCADE, related_name="keys"
    )
    user = models.ForeignKey(
        GatewayUser,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="keys",
    )
    allowed_models = models.JSONField(
        default=list,
        blank=True,
        help_text="Model groups, access groups or wildcards; empty = what the team allows.",
    )
    aliases = models.JSONField(
        default=dict, blank=True, help_text="Per-key model aliases: {alias: model group}."
    )
    expires_at = models.DateTimeField(null=True, blank=True)
    blocked = models.BooleanField(default=False)
    metadata = models.JSONField(default=dict, blank=True)
    previous_digest = models.CharField(
        max_length=64, null=True, blank=True, unique=True, editable=False
    )
    previous_digest_expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_by = models.CharField(max_length=200, blank=True, default="")
    updated_by = models.CharField(max_length=200, blank=True, default="")

    class Meta:
        indexes = [models.Index(fields=["team", "created_at"])]

    def __str__(self) -> str:
        return self.key_alias or self.key_display
