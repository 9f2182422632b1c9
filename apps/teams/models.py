"""Who may spend what: organizations, teams, internal users, end users and their budgets.

Ids (``organization_id``, ``team_id``, ``user_id``, ``budget_id``) identify and may be given by
the client; aliases are labels and may repeat, as in LiteLLM. Every budget-holding row carries
the :class:`BudgetLimits` fields inline and may also reference a reusable :class:`Budget`: the
effective value of a limit is the inline one when set, else the referenced budget's.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import models

from apps.core.durations import validate_duration
from apps.core.models import TimeStampedModel

# Money: 28 digits, 12 after the point (a budget of 1e-7 USD is exact).
MONEY_DIGITS, MONEY_PLACES = 28, 12

LIMIT_FIELDS = (
    "max_budget",
    "soft_budget",
    "budget_duration",
    "rpm_limit",
    "tpm_limit",
    "max_parallel_requests",
    "model_max_budget",
)


def new_id() -> str:
    return str(uuid.uuid4())


class BudgetLimits(models.Model):
    """The one definition of a budget and its limits, shared by every holder."""

    max_budget = models.DecimalField(
        max_digits=MONEY_DIGITS,
        decimal_places=MONEY_PLACES,
        null=True,
        blank=True,
        help_text="Hard limit in USD; calls are refused past it.",
    )
    soft_budget = models.DecimalField(
        max_digits=MONEY_DIGITS,
        decimal_places=MONEY_PLACES,
        null=True,
        blank=True,
        help_text="Alert threshold in USD; calls still pass.",
    )
    budget_duration = models.CharField(
        max_length=20,
        blank=True,
        default="",
        validators=[validate_duration],
        help_text="Spend resets every period: 30s, 1h, 1d, 30d, 1mo. Blank: never.",
    )
    budget_reset_at = models.DateTimeField(null=True, blank=True)
    rpm_limit = models.PositiveBigIntegerField(null=True, blank=True)
    tpm_limit = models.PositiveBigIntegerField(null=True, blank=True)
    max_parallel_requests = models.PositiveIntegerField(null=True, blank=True)
    model_max_budget = models.JSONField(
        default=dict,
        blank=True,
        help_text='Per model: {"gpt-4o": {"budget_limit": 10, "time_period": "1d"}}.',
    )

    class Meta:
        abstract = True

    def limits(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in LIMIT_FIELDS}


class Budget(BudgetLimits, TimeStampedModel):
    """A reusable budget (``/budget/new``) that keys, end users and memberships reference."""

    budget_id = models.CharField(max_length=200, unique=True, default=new_id)
    created_by = models.CharField(max_length=200, blank=True, default="")

    def __str__(self) -> str:
        return self.budget_id


class BudgetHolder(BudgetLimits):
    """Inline limits, an optional shared :class:`Budget`, and what has been spent."""

    budget = models.ForeignKey(
        Budget,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="%(app_label)s_%(class)s_set",
    )
    spend = models.DecimalField(
        max_digits=MONEY_DIGITS, decimal_places=MONEY_PLACES, default=Decimal(0)
    )
    model_spend = models.JSONField(default=dict, blank=True, help_text="Spend per model.")

    class Meta:
        abstract = True

    def effective(self, name: str) -> Any:
        """The value of limit ``name``: inline when set, else the referenced budget's."""
        value = getattr(self, name)
        if value in (None, "", {}) and self.budget is not None:
            return getattr(self.budget, name)
        return value


class Organization(BudgetHolder, TimeStampedModel):
    organization_id = models.CharField(max_length=200, unique=True, default=new_id)
    organization_alias = models.CharField(max_length=200, blank=True, default="", db_index=True)
    allowed_models = models.JSONField(
        default=list, blank=True, help_text="Model groups allowed; empty = all."
    )
    blocked = models.BooleanField(default=False)
    metadata = models.JSONField(default=dict, blank=True)
    created_by = models.CharField(max_length=200, blank=True, default="")

    def __str__(self) -> str:
        return self.organization_alias or self.organization_id


class Team(BudgetHolder, TimeStampedModel):
    team_id = models.CharField(max_length=200, unique=True, default=new_id)
    team_alias = models.CharField(max_length=200, blank=True, default="", db_index=True)
    organization = models.ForeignKey(
        Organization, null=True, blank=True, on_delete=models.PROTECT, related_name="teams"
    )
    allowed_models = models.JSONField(
        default=list, blank=True, help_text="Model groups allowed; empty = all."
    )
    model_aliases = models.JSONField(
        default=dict, blank=True, help_text="Names this team may use for model groups."
    )
    blocked = models.BooleanField(default=False)
    metadata = models.JSONField(default=dict, blank=True)
    created_by = models.CharField(max_length=200, blank=True, default="")

    def __str__(self) -> str:
        return self.team_alias or self.team_id


class UserRole(models.TextChoices):
    PROXY_ADMIN = "proxy_admin", "Proxy admin"
    PROXY_ADMIN_VIEWER = "proxy_admin_viewer", "Proxy admin (read only)"
    ORG_ADMIN = "org_admin", "Organization admin"
    INTERNAL_USER = "internal_user", "Internal user"
    INTERNAL_USER_VIEWER = "internal_user_viewer", "Internal user (read only)"


class GatewayUser(BudgetHolder, TimeStampedModel):
    """An internal user: owns keys, belongs to teams, may log in through ``auth_user``."""

    user_id = models.CharField(max_length=200, unique=True, default=new_id)
    user_alias = models.CharField(max_length=200, blank=True, default="")
    user_email = models.CharField(max_length=254, blank=True, default="", db_index=True)
    user_role = models.CharField(
        max_length=30, choices=UserRole.choices, default=UserRole.INTERNAL_USER
    )
    auth_user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="gateway_user",
    )
    allowed_models = models.JSONField(
        default=list, blank=True, help_text="Model groups allowed; empty = all."
    )
    metadata = models.JSONField(default=dict, blank=True)
    created_by = models.CharField(max_length=200, blank=True, default="")

    class Meta:
        verbose_name = "internal user"

    def __str__(self) -> str:
        return self.user_email or self.user_alias or self.user_id


class TeamRole(models.TextChoices):
    ADMIN = "admin", "Team admin"
    MEMBER = "member", "Member"
    VIEWER = "viewer", "Viewer"


class TeamMembership(BudgetHolder, TimeStampedModel):
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(GatewayUser, on_delete=models.CASCADE, related_name="team_memberships")
    role = models.CharField(max_length=10, choices=TeamRole.choices, default=TeamRole.MEMBER)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["team", "user"], name="team_membership_unique")
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.team} ({self.role})"


class OrganizationRole(models.TextChoices):
    ORG_ADMIN = "org_admin", "Organization admin"
    INTERNAL_USER = "internal_user", "Internal user"
    INTERNAL_USER_VIEWER = "internal_user_viewer", "Internal user (read only)"


class OrganizationMembership(BudgetHolder, TimeStampedModel):
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="memberships"
    )
    user = models.ForeignKey(
        GatewayUser, on_delete=models.CASCADE, related_name="organization_memberships"
    )
    role = models.CharField(
        max_length=30, choices=OrganizationRole.choices, default=OrganizationRole.INTERNAL_USER
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "user"], name="organization_membership_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.organization} ({self.role})"


class ModelRegion(models.TextChoices):
    ANY = "", "Any"
    EU = "eu", "EU"
    US = "us", "US"


class EndUser(BudgetHolder, TimeStampedModel):
    """A customer of the gateway's clients: the ``user`` field of a request."""

    user_id = models.CharField(max_length=200, unique=True)
    alias = models.CharField(max_length=200, blank=True, default="")
    blocked = models.BooleanField(default=False)
    allowed_model_region = models.CharField(
        max_length=10, choices=ModelRegion.choices, blank=True, default=""
    )
    default_model = models.CharField(max_length=255, blank=True, default="")

    class Meta:
        verbose_name = "end user"

    def __str__(self) -> str:
        return self.alias or self.user_id
