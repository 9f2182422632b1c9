"""Serializer fields shared by the management API."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.core.durations import parse_duration

MONEY_PLACES = Decimal("1e-12")
MONEY_MAX = Decimal("1e16")


@extend_schema_field(OpenApiTypes.NUMBER)
class MoneyField(serializers.Field):  # type: ignore[type-arg]
    """USD amounts: JSON numbers or numeric strings, kept to 12 decimal places (so 1e-7 is
    exact), never negative. Rendered as JSON numbers, as LiteLLM does."""

    default_error_messages = {
        "invalid": "A number is required.",
        "negative": "Must not be negative.",
        "too_large": "Must be less than 1e16.",
    }

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("required", False)
        kwargs.setdefault("allow_null", True)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> Decimal:
        if isinstance(data, bool) or not isinstance(data, int | float | str | Decimal):
            self.fail("invalid")
        try:
            value = Decimal(str(data).strip())
        except InvalidOperation:
            self.fail("invalid")
        if not value.is_finite():
            self.fail("invalid")
        if value < 0:
            self.fail("negative")
        if value >= MONEY_MAX:
            self.fail("too_large")
        return value.quantize(MONEY_PLACES).normalize() if value else Decimal(0)

    def to_representation(self, value: Any) -> float | None:
        return None if value is None else float(value)


class DurationField(serializers.CharField):
    """A LiteLLM duration ("30s", "1h", "1d", "30d", "1mo"); blank or null means none."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("required", False)
        kwargs.setdefault("allow_null", True)
        kwargs.setdefault("allow_blank", True)
        kwargs.setdefault("max_length", 20)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> str:
        text: str = super().to_internal_value(data)
        if text:
            try:
                parse_duration(text)
            except ValueError as exc:
                raise serializers.ValidationError(str(exc)) from None
        return text.strip()


class LimitField(serializers.IntegerField):
    """rpm, tpm and parallel limits: a whole number >= 0, or null for no limit."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("required", False)
        kwargs.setdefault("allow_null", True)
        kwargs.setdefault("min_value", 0)
        kwargs.setdefault("max_value", 2**62)
        super().__init__(**kwargs)


class StrictBooleanField(serializers.BooleanField):
    """true or false only (DRF's own also takes "yes", 1, "on", ...)."""

    def to_internal_value(self, data: Any) -> bool:
        if isinstance(data, bool):
            return data
        self.fail("invalid", input=data)
        raise AssertionError  # unreachable: fail() raises


def model_max_budget_valid(value: Any) -> dict[str, Any]:
    """``{model: {"budget_limit": x, "time_period": "1d"}}`` (LiteLLM's shape; ``max_budget`` /
    ``budget_duration`` are accepted as the names of the same two values). Both are required:
    a per-model budget is spent over a period."""
    if not isinstance(value, dict):
        raise serializers.ValidationError("Must be an object of model names.")
    out: dict[str, Any] = {}
    money = MoneyField()
    for model, spec in value.items():
        if isinstance(spec, int | float | str) and not isinstance(spec, bool):
            spec = {"budget_limit": spec}
        if not isinstance(spec, dict):
            raise serializers.ValidationError(f"{model}: must be an object with budget_limit.")
        limit = spec.get("budget_limit", spec.get("max_budget"))
        period = spec.get("time_period", spec.get("budget_duration")) or ""
        try:
            amount = money.to_internal_value(limit)
        except serializers.ValidationError:
            raise serializers.ValidationError(f"{model}: budget_limit must be a number.") from None
        if not period:
            raise serializers.ValidationError(f"{model}: time_period is required (e.g. '1d').")
        try:
            parse_duration(str(period))
        except ValueError as exc:
            raise serializers.ValidationError(f"{model}: {exc}") from None
        out[str(model)] = {"budget_limit": str(amount), "time_period": str(period)}
    return out
