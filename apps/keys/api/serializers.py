"""Request and response shapes of the key routes (LiteLLM's field names)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from apps.core.api.fields import DurationField, MoneyField, StrictBooleanField
from apps.keys.models import VirtualKey
from apps.teams.api.common import limits_data
from apps.teams.api.serializers import LimitsSerializer, a_label, an_id, str_list


class KeyFieldsSerializer(LimitsSerializer):
    """Fields /key/generate and /key/update share. Absent fields are left alone."""

    key_alias = a_label()
    duration = DurationField()
    models = str_list()
    aliases = serializers.DictField(
        child=serializers.CharField(max_length=255), required=False, allow_null=True
    )
    metadata = serializers.DictField(required=False, allow_null=True)
    tags = str_list()
    blocked = StrictBooleanField(required=False, allow_null=True)
    user_id = an_id()
    team_id = an_id()
    organization_id = an_id()


class GenerateKeySerializer(KeyFieldsSerializer):
    key = serializers.CharField(min_length=8, max_length=500, required=False, allow_null=True)

    def validate_key(self, value: str | None) -> str | None:
        if value is not None and not value.startswith("sk-"):
            raise serializers.ValidationError("A key must start with 'sk-'.")
        return value


class UpdateKeySerializer(KeyFieldsSerializer):
    key = serializers.CharField(max_length=500)
    spend = MoneyField()


class RegenerateKeySerializer(KeyFieldsSerializer):
    new_key = serializers.CharField(min_length=8, max_length=500, required=False, allow_null=True)
    grace_period = DurationField()
    key = serializers.CharField(max_length=500, required=False, allow_null=True)

    def validate_new_key(self, value: str | None) -> str | None:
        if value is not None and not value.startswith("sk-"):
            raise serializers.ValidationError("A key must start with 'sk-'.")
        return value


class KeyRefSerializer(serializers.Serializer):  # type: ignore[type-arg]
    key = serializers.CharField(max_length=500)


class DeleteKeysSerializer(serializers.Serializer):  # type: ignore[type-arg]
    keys = str_list()
    key_aliases = str_list()

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not attrs.get("keys") and not attrs.get("key_aliases"):
            raise serializers.ValidationError(
                {"keys": "At least one of 'keys' or 'key_aliases' must be provided."}
            )
        return attrs


def key_data(key: VirtualKey) -> dict[str, Any]:
    """A key as LiteLLM shows it. ``token`` identifies the key; the secret is never here."""
    org = key.organization or (key.team.organization if key.team else None)
    return {
        "token": key.digest,
        "key_name": key.key_display,
        "key_alias": key.key_alias or None,
        "expires": key.expires_at,
        "models": list(key.allowed_models or []),
        "aliases": dict(key.aliases or {}),
        "user_id": key.user.user_id if key.user else None,
        "team_id": key.team.team_id if key.team else None,
        "organization_id": org.organization_id if org else None,
        **limits_data(key),
        "metadata": dict(key.metadata or {}),
        "tags": list((key.metadata or {}).get("tags") or []),
        "blocked": key.blocked,
        "created_by": key.created_by or None,
        "updated_by": key.updated_by or None,
        "created_at": key.created_at,
        "updated_at": key.updated_at,
    }
