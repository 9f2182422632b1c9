from __future__ import annotations

from django.db import models


class TimeStampedModel(models.Model):
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class ProxyConfig(models.Model):
    """The proxy-wide settings of an imported config file (one row, pk=1).

    The sections are kept as given (minus secrets), so unknown keys survive an export.
    """

    litellm_settings = models.JSONField(default=dict, blank=True)
    router_settings = models.JSONField(default=dict, blank=True)
    general_settings = models.JSONField(
        default=dict, blank=True, help_text="master_key is kept only as a digest."
    )
    environment_variables = models.JSONField(default=dict, blank=True)
    extra = models.JSONField(default=dict, blank=True, help_text="Top-level keys not understood.")
    master_key_digest = models.CharField(max_length=64, blank=True, default="")
    master_key_ref = models.CharField(
        max_length=200,
        blank=True,
        default="",
        help_text="os.environ/NAME when the key is a reference.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "proxy config"
        verbose_name_plural = "proxy config"

    def __str__(self) -> str:
        return "Proxy config"


class ChangeMarker(models.Model):
    """A counter per topic, bumped on every change of cached data, so that every process (and
    every instance) can see that its in-memory caches are stale without Redis."""

    topic = models.CharField(max_length=50, primary_key=True)
    revision = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.topic}@{self.revision}"


class AuditLog(models.Model):
    """One management change: who did what to which object, with its state before and after.

    ``before`` and ``after`` never hold secrets (keys, digests, credentials): writers pass them
    through ``apps.core.audit.scrub``.
    """

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.CharField(max_length=200, help_text="e.g. master, user:alice, key:sk-...wxyz")
    source = models.CharField(max_length=20, default="api", help_text="api or admin")
    action = models.CharField(max_length=50, help_text="created, updated, deleted, blocked, ...")
    object_type = models.CharField(max_length=50)
    object_id = models.CharField(max_length=200)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["object_type", "object_id"])]
        verbose_name = "audit log entry"
        verbose_name_plural = "audit log"

    def __str__(self) -> str:
        return f"{self.actor} {self.action} {self.object_type} {self.object_id}"
