"""Request shapes of the tenancy routes (LiteLLM's field names). Absent fields are left alone
by updates; ``validated_data`` holds only what the client sent."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from apps.core.api.fields import (
    DurationField,
    LimitField,
    MoneyField,
    StrictBooleanField,
    model_max_budget_valid,
)
from apps.teams.models import ModelRegion, OrganizationRole, UserRole


def str_list(**kwargs: Any) -> serializers.ListField:
    kwargs.setdefault("required", False)
    kwargs.setdefault("allow_null", True)
    return serializers.ListField(child=serializers.CharField(max_length=255), **kwargs)


def an_id(**kwargs: Any) -> serializers.CharField:
    kwargs.setdefault("required", False)
    kwargs.setdefault("allow_null", True)
    return serializers.CharField(max_length=200, **kwargs)


def a_label(**kwargs: Any) -> serializers.CharField:
    kwargs.setdefault("required", False)
    kwargs.setdefault("allow_null", True)
    kwargs.setdefault("allow_blank", True)
    kwargs.setdefault("max_length", 200)
    return serializers.CharField(**kwargs)


class LimitsSerializer(serializers.Serializer):  # type: ignore[type-arg]
    """The budget and limit fields every holder accepts, and ``budget_id`` to share one."""

    max_budget = MoneyField()
    soft_budget = MoneyField()
    budget_duration = DurationField()
    rpm_limit = LimitField()
    tpm_limit = LimitField()
    max_parallel_requests = LimitField(max_value=2**31 - 1)
    model_max_budget = serializers.JSONField(required=False, allow_null=True)
    budget_id = an_id()

    def validate_model_max_budget(self, value: Any) -> dict[str, Any]:
        return {} if value is None else model_max_budget_valid(value)


class MemberSerializer(serializers.Serializer):  # type: ignore[type-arg]
    user_id = an_id()
    user_email = serializers.EmailField(max_length=254, required=False, allow_null=True)
    role = serializers.ChoiceField(
        choices=["admin", "user", "member", "viewer"], required=False, default="user"
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not attrs.get("user_id") and not attrs.get("user_email"):
            raise serializers.ValidationError(
                {"user_id": "Either user_id or user_email must be provided."}
            )
        return attrs


class OrgMemberSerializer(MemberSerializer):
    role = serializers.ChoiceField(
        choices=OrganizationRole.values, required=False, default=OrganizationRole.INTERNAL_USER
    )


class TeamFieldsSerializer(LimitsSerializer):
    team_alias = a_label()
    organization_id = an_id()
    models = str_list()
    blocked = StrictBooleanField(required=False)
    metadata = serializers.DictField(required=False, allow_null=True)
    model_aliases = serializers.DictField(
        child=serializers.CharField(max_length=255), required=False, allow_null=True
    )
    tags = str_list()


class NewTeamSerializer(TeamFieldsSerializer):
    team_id = an_id()
    members_with_roles = MemberSerializer(many=True, required=False)


class UpdateTeamSerializer(TeamFieldsSerializer):
    team_id = serializers.CharField(max_length=200)


class TeamIdSerializer(serializers.Serializer):  # type: ignore[type-arg]
    team_id = serializers.CharField(max_length=200)


class TeamIdsSerializer(serializers.Serializer):  # type: ignore[type-arg]
    team_ids = serializers.ListField(child=serializers.CharField(max_length=200), allow_empty=False)


class TeamMemberAddSerializer(serializers.Serializer):  # type: ignore[type-arg]
    team_id = serializers.CharField(max_length=200)
    member = serializers.JSONField()
    max_budget_in_team = MoneyField()

    def validate_member(self, value: Any) -> list[dict[str, Any]]:
        items = value if isinstance(value, list) else [value]
        if not items:
            raise serializers.ValidationError("At least one member is required.")
        checked = MemberSerializer(data=items, many=True)
        checked.is_valid(raise_exception=True)
        return list(checked.validated_data)


class TeamMemberDeleteSerializer(serializers.Serializer):  # type: ignore[type-arg]
    team_id = serializers.CharField(max_length=200)
    user_id = an_id()
    user_email = serializers.EmailField(max_length=254, required=False, allow_null=True)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not attrs.get("user_id") and not attrs.get("user_email"):
            raise serializers.ValidationError(
                {"user_id": "Either user_id or user_email must be provided."}
            )
        return attrs


class TeamModelsSerializer(serializers.Serializer):  # type: ignore[type-arg]
    team_id = serializers.CharField(max_length=200)
    models = serializers.ListField(child=serializers.CharField(max_length=255), allow_empty=False)


class OrganizationFieldsSerializer(LimitsSerializer):
    organization_alias = a_label()
    models = str_list()
    blocked = StrictBooleanField(required=False)
    metadata = serializers.DictField(required=False, allow_null=True)


class NewOrganizationSerializer(OrganizationFieldsSerializer):
    organization_id = an_id()


class UpdateOrganizationSerializer(OrganizationFieldsSerializer):
    organization_id = serializers.CharField(max_length=200)


class OrganizationIdsSerializer(serializers.Serializer):  # type: ignore[type-arg]
    organization_ids = serializers.ListField(
        child=serializers.CharField(max_length=200), allow_empty=False
    )


class OrganizationMemberAddSerializer(serializers.Serializer):  # type: ignore[type-arg]
    organization_id = serializers.CharField(max_length=200)
    member = serializers.JSONField()
    max_budget_in_organization = MoneyField()

    def validate_member(self, value: Any) -> list[dict[str, Any]]:
        items = value if isinstance(value, list) else [value]
        if not items:
            raise serializers.ValidationError("At least one member is required.")
        checked = OrgMemberSerializer(data=items, many=True)
        checked.is_valid(raise_exception=True)
        return list(checked.validated_data)


class UserFieldsSerializer(LimitsSerializer):
    user_alias = a_label()
    user_email = serializers.EmailField(
        max_length=254, required=False, allow_null=True, allow_blank=True
    )
    user_role = serializers.ChoiceField(
        choices=UserRole.values,
        required=False,
        allow_null=True,
    )
    models = str_list()
    metadata = serializers.DictField(required=False, allow_null=True)


class NewUserSerializer(UserFieldsSerializer):
    user_id = an_id()
    teams = serializers.JSONField(required=False, allow_null=True)
    organizations = str_list()
    auto_create_key = StrictBooleanField(required=False, default=True)
    key_alias = a_label()
    duration = DurationField()

    def validate_teams(self, value: Any) -> list[dict[str, Any]]:
        if value is None:
            return []
        if not isinstance(value, list):
            raise serializers.ValidationError("Must be a list of team ids or team objects.")
        out: list[dict[str, Any]] = []
        for item in value:
            if isinstance(item, str) and item:
                out.append({"team_id": item, "max_budget_in_team": None, "user_role": "user"})
                continue
            if not isinstance(item, dict) or not isinstance(item.get("team_id"), str):
                raise serializers.ValidationError("Each team needs a team_id.")
            role = item.get("user_role", "user")
            if role not in ("user", "admin"):
                raise serializers.ValidationError("user_role must be 'user' or 'admin'.")
            budget = (
                MoneyField().to_internal_value(item["max_budget_in_team"])
                if item.get("max_budget_in_team") is not None
                else None
            )
            out.append(
                {"team_id": item["team_id"], "max_budget_in_team": budget, "user_role": role}
            )
        return out


class UpdateUserSerializer(UserFieldsSerializer):
    user_id = an_id()
    spend = MoneyField()

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not attrs.get("user_id") and not attrs.get("user_email"):
            raise serializers.ValidationError(
                {"user_id": "Either user_id or user_email must be provided."}
            )
        return attrs


class UserIdsSerializer(serializers.Serializer):  # type: ignore[type-arg]
    user_ids = serializers.ListField(child=serializers.CharField(max_length=200), allow_empty=False)


class CustomerFieldsSerializer(LimitsSerializer):
    alias = a_label()
    blocked = StrictBooleanField(required=False)
    allowed_model_region = serializers.ChoiceField(
        choices=[r for r in ModelRegion.values if r], required=False, allow_null=True
    )
    default_model = a_label(max_length=255)


class NewCustomerSerializer(CustomerFieldsSerializer):
    user_id = serializers.CharField(max_length=200)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs.get("max_budget") is not None and attrs.get("budget_id"):
            raise serializers.ValidationError(
                {"budget_id": "Set either 'max_budget' or 'budget_id', not both."}
            )
        return attrs


class UpdateCustomerSerializer(CustomerFieldsSerializer):
    user_id = serializers.CharField(max_length=200)


class BudgetSerializer(LimitsSerializer):
    budget_reset_at = serializers.DateTimeField(required=False, allow_null=True)


class BudgetIdSerializer(serializers.Serializer):  # type: ignore[type-arg]
    id = serializers.CharField(max_length=200)


class BudgetIdsSerializer(serializers.Serializer):  # type: ignore[type-arg]
    budgets = serializers.ListField(child=serializers.CharField(max_length=200), allow_empty=False)
