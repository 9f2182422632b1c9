from __future__ import annotations

from decimal import Decimal

from django.db import models

# Spend columns everywhere (rows, rollups, budget holders): USD to 12 decimal places.
COST_DIGITS = 28
COST_PLACES = 12


class UsageLog(models.Model):
    """One row per request, success or failure.

    Tenancy columns are plain ids, not foreign keys: rows outlive deleted keys and teams, bulk
    inserts need no lookups, and the table is partitioned by month on PostgreSQL (see
    ``apps.usage.partitions``). A row is unique by ``(request_id, start_time)``, which makes
    every write idempotent: a batch replayed after a partial failure cannot double.
    """

    request_id = models.CharField(max_length=64, db_index=True)
    # The answer's own id (``chatcmpl-…``, ``msg_…``), so a client can look its call up.
    response_id = models.CharField(max_length=255, blank=True, default="")
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
    prompt_tokens = models.PositiveBigIntegerField(default=0)
    completion_tokens = models.PositiveBigIntegerField(default=0)
    cached_tokens = models.PositiveBigIntegerField(default=0)
    cache_creation_tokens = models.PositiveBigIntegerField(default=0)
    reasoning_tokens = models.PositiveBigIntegerField(default=0)
    total_tokens = models.PositiveBigIntegerField(default=0)
    cost = models.DecimalField(
        max_digits=COST_DIGITS, decimal_places=COST_PLACES, default=Decimal(0)
    )
    status_code = models.PositiveSmallIntegerField()
    error_type = models.CharField(max_length=100, blank=True, default="")
    error_message = models.TextField(blank=True, default="")
    latency_ms = models.PositiveBigIntegerField(default=0)
    ttft_ms = models.PositiveBigIntegerField(null=True, blank=True)
    stream = models.BooleanField(default=False)
    # Routing: retries made and fallback groups tried; the group asked for when a fallback
    # group answered (model_group is then the fallback's).
    retries = models.PositiveSmallIntegerField(default=0)
    fallbacks = models.PositiveSmallIntegerField(default=0)
    fallback_from = models.CharField(max_length=255, blank=True, default="")
    metadata = models.JSONField(default=dict, blank=True)
    start_time = models.DateTimeField()
    end_time = models.DateTimeField()
    # Only when enabled (GATEWAY_STORE_PROMPTS, or the key's or team's metadata
    # ``store_prompts_in_spend_logs``); secrets redacted, cut to GATEWAY_STORED_BODY_BYTES.
    request_body = models.TextField(blank=True, default="")
    response_body = models.TextField(blank=True, default="")

    class Meta:
        indexes = [
            models.Index(fields=["start_time"], name="usage_start_idx"),
            models.Index(fields=["key_id", "start_time"], name="usage_key_time_idx"),
            models.Index(fields=["team_id", "start_time"], name="usage_team_time_idx"),
            models.Index(fields=["model_group", "start_time"], name="usage_model_time_idx"),
            models.Index(fields=["response_id"], name="usage_response_idx"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["request_id", "start_time"], name="usage_request_uniq")
        ]

    def __str__(self) -> str:
        return f"{self.request_id} {self.model_group} {self.status_code}"


class QuarantinedUsage(models.Model):
    """A usage row the database refused on its own (its batch was split until only it failed).

    Kept whole, as JSON text, so it can be inspected, fixed and replayed; it never blocks the
    rows written with it."""

    request_id = models.CharField(max_length=64, blank=True, default="")
    error = models.TextField()
    row = models.TextField(help_text="The row as JSON.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "quarantined usage row"
        indexes = [models.Index(fields=["created_at"], name="usage_quarantine_time_idx")]

    def __str__(self) -> str:
        return self.request_id or f"quarantined row {self.pk}"


class DailyUsage(models.Model):
    """Per-day totals of one dimension (``kind``: key, team, user, ...) per model group, kept
    in step with the usage rows by the writer (same transaction), so reports never scan the
    raw rows."""

    class Kind(models.TextChoices):
        KEY = "key"
        TEAM = "team"
        ORGANIZATION = "organization"
        USER = "user"
        END_USER = "end_user"
        MODEL_GROUP = "model_group"
        DEPLOYMENT = "deployment"

    day = models.DateField()
    kind = models.CharField(max_length=20, choices=Kind.choices)
    entity = models.CharField(max_length=255, help_text="The key, team, ... id; '' for none.")
    model_group = models.CharField(max_length=255, blank=True, default="")
    requests = models.BigIntegerField(default=0)
    errors = models.BigIntegerField(default=0)
    prompt_tokens = models.BigIntegerField(default=0)
    completion_tokens = models.BigIntegerField(default=0)
    cached_tokens = models.BigIntegerField(default=0)
    total_tokens = models.BigIntegerField(default=0)
    cost = models.DecimalField(
        max_digits=COST_DIGITS, decimal_places=COST_PLACES, default=Decimal(0)
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["day", "kind", "entity", "model_group"], name="usage_daily_uniq"
            )
        ]
        indexes = [models.Index(fields=["kind", "entity", "day"], name="usage_daily_entity_idx")]

    def __str__(self) -> str:
        return f"{self.day} {self.kind}={self.entity} {self.model_group}"
