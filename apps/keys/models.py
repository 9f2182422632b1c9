from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models

from apps.core.models import TimeStampedModel
from apps.teams.models import Team


class VirtualKey(TimeStampedModel):
    """A key clients use instead of provider credentials. Only a digest of the key is stored."""

    digest = models.CharField(max_length=64, unique=True, editable=False)
    key_display = models.CharField(max_length=32, editable=False, help_text="e.g. sk-abc...wxyz")
    key_alias = models.CharField(max_length=200, blank=True, default="", db_index=True)
    team = models.ForeignKey(
        Team, null=True, blank=True, on_delete=models.CASCADE, related_name="keys"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="virtual_keys",
    )
    user_id_external = models.CharField(
        "user id", max_length=200, blank=True, default="", help_text="Owner id as given by the API."
    )
    allowed_models = models.JSONField(
        default=list, blank=True, help_text="Model groups allowed; empty = all."
    )
    max_budget = models.DecimalField(max_digits=14, decimal_places=6, null=True, blank=True)
    spend = models.DecimalField(max_digits=18, decimal_places=8, default=Decimal(0))
    budget_duration = models.CharField(max_length=20, blank=True, default="")
    budget_reset_at = models.DateTimeField(null=True, blank=True)
    rpm_limit = models.PositiveIntegerField(null=True, blank=True)
    tpm_limit = models.PositiveBigIntegerField(null=True, blank=True)
    max_parallel_requests = models.PositiveIntegerField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    blocked = models.BooleanField(default=False)
    metadata = models.JSONField(default=dict, blank=True)

    class Meta:
        indexes = [models.Index(fields=["team", "created_at"])]

    def __str__(self) -> str:
        return self.key_alias or self.key_display
