from __future__ import annotations

import uuid

from django.core.exceptions import ValidationError
from django.db import models

from apps.core.models import TimeStampedModel
from apps.providers.registry import UnknownProvider, get_provider


def _new_id() -> str:
    return uuid.uuid4().hex


class ModelGroup(TimeStampedModel):
    """The public model name clients ask for. Its deployments serve it."""

    name = models.CharField(
        max_length=255,
        unique=True,
        help_text="What clients send as 'model'. May contain '*' (e.g. 'openai/*').",
    )
    description = models.CharField(max_length=500, blank=True, default="")
    settings = models.JSONField(
        default=dict, blank=True, help_text="Group settings (fallbacks, retries, ...)."
    )
    model_info = models.JSONField(default=dict, blank=True)
    enabled = models.BooleanField(default=True)
    allow_client_api_key = models.BooleanField(
        "accept the client's provider key",
        default=False,
        help_text="Clients may send their own provider key (body 'api_key' or header "
        "'x-provider-api-key'), used for that request only, never stored or logged.",
    )
    allow_client_api_base = models.BooleanField(
        "accept the client's base URL",
        default=False,
        help_text="Clients may send their own provider base URL (body 'api_base' or header "
        "'x-provider-api-base'), checked against the hosts below.",
    )
    client_api_base_hosts = models.JSONField(
        "hosts a client's base URL may name",
        default=list,
        blank=True,
        help_text="Host names or patterns ('*.openai.azure.com'); empty: any public host. "
        "An internal address (loopback, private, link-local) only when listed exactly.",
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Deployment(TimeStampedModel):
    """One upstream that can serve a model group."""

    SOURCE_ADMIN = "admin"
    SOURCE_CONFIG = "config"

    model_id = models.CharField(
        "deployment id",
        max_length=100,
        unique=True,
        default=_new_id,
        help_text="Stable id (model_info.id in config files).",
    )
    group = models.ForeignKey(ModelGroup, on_delete=models.CASCADE, related_name="deployments")
    provider = models.CharField(max_length=50)
    model = models.CharField(max_length=255, help_text="Upstream model name, without provider.")
    api_base = models.CharField(max_length=500, blank=True, default="")
    api_key = models.TextField(
        blank=True,
        default="",
        help_text="Stored encrypted; 'os.environ/NAME' to read it from the environment.",
    )
    api_version = models.CharField(max_length=50, blank=True, default="")
    secret_params = models.JSONField(
        default=dict, blank=True, help_text="Other credentials (encrypted values)."
    )
    extra_params = models.JSONField(
        default=dict, blank=True, help_text="Other litellm_params, forwarded to the provider."
    )
    headers = models.JSONField(default=dict, blank=True, help_text="Extra upstream headers.")
    rpm = models.PositiveIntegerField(null=True, blank=True)
    tpm = models.PositiveBigIntegerField(null=True, blank=True)
    weight = models.PositiveIntegerField(default=1)
    order = models.PositiveIntegerField(
        null=True, blank=True, help_text="Priority: lower is tried first."
    )
    timeout = models.FloatField(null=True, blank=True, help_text="Seconds.")
    stream_timeout = models.FloatField(null=True, blank=True, help_text="Seconds.")
    input_cost_per_token = models.DecimalField(
        max_digits=20, decimal_places=14, null=True, blank=True
    )
    output_cost_per_token = models.DecimalField(
        max_digits=20, decimal_places=14, null=True, blank=True
    )
    cache_read_input_token_cost = models.DecimalField(
        max_digits=20, decimal_places=14, null=True, blank=True
    )
    model_info = models.JSONField(default=dict, blank=True)
    region_name = models.CharField(
        max_length=50,
        blank=True,
        default="",
        help_text="Region of the upstream (eu, us, ...); end users pinned to a region use only it.",
    )
    enabled = models.BooleanField(default=True)
    source = models.CharField(max_length=10, default=SOURCE_ADMIN, editable=False)

    class Meta:
        ordering = ["group__name", "order", "pk"]

    def __str__(self) -> str:
        return f"{self.group.name} -> {self.provider}/{self.model}"

    def clean(self) -> None:
        try:
            get_provider(self.provider)
        except UnknownProvider:
            raise ValidationError({"provider": f"Unknown provider '{self.provider}'."}) from None
