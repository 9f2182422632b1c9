from __future__ import annotations

from decimal import Decimal

from django.db import models


class UsageLog(models.Model):
    """One row per request, success or failure.

    Tenancy columns are plain ids, not foreign keys: rows outlive deleted keys and teams, bulk
    inserts need no lookups, and the table can be partitioned by time.
    """

    request_id = models.CharField(max_length=64, db_index=True)
    call_type = models.CharField(max_length=30)
    key_id = models.BigIntegerField(null=True, blank=True)
    key_alias = models.CharField(max_length=200, blank=True, default="")
    team_id = models.BigIntegerField(null=True, blank=True)
    organization_id = models.BigIntegerField(null=True, blank=True)
    user_id = models.CharField(max_length=200, blank=True, default="")
    end_user = models.CharField(max_length=200, blank=True, default="")
    model_group = models.CharField(max_length=255, blank=True, default="")
    deployment_id = models.CharField(max_length=100, blank=True, default="")
    provider = models.CharField(max_length=50, blank=True, default="")
    upstream_model = models.CharField(max_length=255, blank=True, default="")
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    cached_tokens = models.PositiveIntegerField(default=0)
    cache_creation_tokens = models.PositiveIntegerField(default=0)
    total_tokens = models.PositiveIntegerField(default=0)
    cost = models.DecimalField(max_digits=18, decimal_places=10, default=Decimal(0))
    status_code = models.PositiveSmallIntegerField()
    error_type = models.CharField(max_length=100, blank=True, default="")
    error_message = models.TextField(blank=True, default="")
    latency_ms = models.PositiveIntegerField(default=0)
    ttft_ms = models.PositiveIntegerField(null=True, blank=True)
    stream = models.BooleanField(default=False)
    metadata = models.JSONField(default=dict, blank=True)
    start_time = models.DateTimeField()
    end_time = models.DateTimeField()

    class Meta:
        indexes = [
            models.Index(fields=["start_time"], name="usage_start_idx"),
            models.Index(fields=["key_id", "start_time"], name="usage_key_time_idx"),
            models.Index(fields=["team_id", "start_time"], name="usage_team_time_idx"),
            models.Index(fields=["model_group", "start_time"], name="usage_model_time_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.request_id} {self.model_group} {self.status_code}"
