from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest

from apps.core.admin_audit import AuditedAdmin
from apps.core.secrets import encrypt, is_reference, redact
from apps.providers.registry import provider_choices
from apps.routing.models import Deployment, ModelGroup


class DeploymentForm(forms.ModelForm[Deployment]):
    provider = forms.ChoiceField(choices=())
    new_api_key = forms.CharField(
        label="API key",
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Stored encrypted and never shown again. Leave blank to keep the current key; "
        "'os.environ/NAME' reads it from the environment.",
    )
    clear_api_key = forms.BooleanField(label="Remove the stored API key", required=False)

    class Meta:
        model = Deployment
        # Explicit, so a credential column can never show up in the form by accident.
        fields = (
            "group",
            "provider",
            "model",
            "enabled",
            "api_base",
            "api_version",
            "headers",
            "extra_params",
            "weight",
            "order",
            "rpm",
            "tpm",
            "timeout",
            "stream_timeout",
            "input_cost_per_token",
            "output_cost_per_token",
            "cache_read_input_token_cost",
            "model_info",
        )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        provider = self.fields["provider"]
        assert isinstance(provider, forms.ChoiceField)
        provider.choices = provider_choices()

    def save(self, commit: bool = True) -> Deployment:
        dep: Deployment = super().save(commit=False)
        if self.cleaned_data.get("clear_api_key"):
            dep.api_key = ""
        elif self.cleaned_data.get("new_api_key"):
            dep.api_key = encrypt(self.cleaned_data["new_api_key"])
        if commit:
            dep.save()
        return dep


class DeploymentInline(admin.TabularInline[Deployment, ModelGroup]):
    model = Deployment
    fields = ("provider", "model", "api_base", "weight", "order", "enabled")
    readonly_fields = fields
    extra = 0
    show_change_link = True
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(ModelGroup)
class ModelGroupAdmin(AuditedAdmin[ModelGroup]):
    list_display = ("name", "deployment_count", "enabled", "updated_at")
    list_filter = ("enabled",)
    search_fields = ("name", "description")
    inlines = [DeploymentInline]

    @admin.display(description="deployments")
    def deployment_count(self, obj: ModelGroup) -> int:
        return obj.deployments.count()


@admin.register(Deployment)
class DeploymentAdmin(AuditedAdmin[Deployment]):
    form = DeploymentForm
    list_display = (
        "group",
        "provider",
        "model",
        "api_base",
        "credential",
        "weight",
        "order",
        "enabled",
        "source",
    )
    list_filter = ("provider", "enabled", "source")
    list_select_related = ("group",)
    search_fields = ("group__name", "model", "model_id", "api_base")
    readonly_fields = ("model_id", "credential", "source", "created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("group", "provider", "model", "enabled", "model_id", "source")}),
        (
            "Endpoint and credentials",
            {
                "fields": (
                    "api_base",
                    "api_version",
                    "credential",
                    "new_api_key",
                    "clear_api_key",
                    "headers",
                    "extra_params",
                ),
            },
        ),
        (
            "Routing and limits",
            {"fields": ("weight", "order", "rpm", "tpm", "timeout", "stream_timeout")},
        ),
        (
            "Prices (USD per token; blank = bundled price table)",
            {
                "fields": (
                    "input_cost_per_token",
                    "output_cost_per_token",
                    "cache_read_input_token_cost",
                ),
            },
        ),
        ("Info", {"fields": ("model_info", "created_at", "updated_at")}),
    )

    @admin.display(description="API key")
    def credential(self, obj: Deployment) -> str:
        if not obj.api_key:
            return "-"
        return obj.api_key if is_reference(obj.api_key) else f"set ({redact(obj.api_key)})"
