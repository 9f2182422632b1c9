from __future__ import annotations

from decimal import Decimal

from django.db import models

from apps.core.models import TimeStampedModel


class Organization(TimeStampedModel):
    name = models.CharField(max_length=200, unique=True)
    allowed_models = models.JSONField(
        default=list, blank=True, help_text="Model groups allowed; empty = all."
    )
    max_budget = models.DecimalField(max_digits=14, decimal_places=6, null=True, blank=True)
    spend = models.DecimalField(max_digits=18, decimal_places=8, default=Decimal(0))
    metadata = models.JSONField(default=dict, blank=True)

    def __str__(self) -> str:
        return self.name


class Team(TimeStampedModel):
    organization = models.ForeignKey(
        Organization, null=True, blank=True, on_delete=models.PROTECT, related_name="teams"
    )
    team_alias = models.CharField(max_length=200, unique=True)
    allowed_models = models.JSONField(
        default=list, blank=True, help_text="Model groups allowed; empty = all."
    )
    max_budget = models.DecimalField(max_digits=14, decimal_places=6, null=True, blank=True)
    spend = models.DecimalField(max_digits=18, decimal_places=8, default=Decimal(0))
    budget_duration = models.CharField(max_length=20, blank=True, default="")
    budget_reset_at = models.DateTimeField(null=True, blank=True)
    rpm_limit = models.PositiveIntegerField(null=True, blank=True)
    tpm_limit = models.PositiveBigIntegerField(null=True, blank=True)
    blocked = models.BooleanField(default=False)
    metadata = models.JSONField(default=dict, blank=True)

    def __str__(self) -> str:
        return self.team_alias
