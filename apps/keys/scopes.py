"""The limits and budget of one level of a caller (key, team, organization, user, team member,
end user), read once from the database into an immutable :class:`Scope` with its counters
prebuilt, so the request path only assembles tuples.

A level's effective value of each limit is its own field when set, else the one of the
``Budget`` row it references (``budget``), the contract of ``apps.teams.models.BudgetLimits``.
Spend is counted in integer nano-dollars (:func:`units`) by the limiter's TOTAL counters; a
counter's name carries the budget period (``budget_reset_at``), so a reset starts a new one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from apps.core.conf import conf
from apps.core.durations import parse_duration
from apps.core.ratelimit import Counter, Kind

NANO = Decimal(10) ** 9
# A parallel slot whose holder dies without releasing it (worker killed mid-call) is freed
# this long after the longest a call may take (the upstream timeout).
PARALLEL_LEASE_MARGIN_S = 60.0
# Totals of a budget period outlive the period by this much (then Redis forgets them).
_TOTAL_GRACE_S = 86400.0


def units(amount: Decimal | float | None) -> int:
    """``amount`` of USD in nano-dollars, rounded up (a cost never rounds down to free)."""
    if amount is None:
        return 0
    value = Decimal(str(amount)) if isinstance(amount, float) else amount
    return math.ceil(value * NANO)


def dollars(nano: int) -> str:
    """Nano-dollars as a plain decimal string (``0.0000001``, never ``1E-7``)."""
    return format((Decimal(nano) / NANO).normalize(), "f")


def duration_seconds(text: str) -> float | None:
    """A duration (``30s``, ``1h``, ``1d``, ``1mo``...) in seconds, a month counted as 30
    days (per-model budgets use fixed windows); None when unreadable."""
    try:
        duration = parse_duration(text)
    except ValueError:
        return None
    if duration.unit == "mo":
        return duration.amount * 30 * 86400.0
    start = datetime(2000, 1, 1, tzinfo=UTC)
    return (duration.after(start) - start).total_seconds()


def next_reset(*, duration: str, after: datetime) -> datetime | None:
    """When a budget of ``duration`` that starts at ``after`` resets (calendar months)."""
    try:
        return parse_duration(duration).after(after)
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class ModelBudget:
    model: str
    limit: Decimal
    period_s: float


@dataclass(frozen=True, slots=True)
class Scope:
    level: str  # "key", "team", "organization", "user", "team member", "end user"
    ident: str
    max_budget: Decimal | None = None
    soft_budget: Decimal | None = None
    spend: Decimal = Decimal(0)
    budget_reset_at: datetime | None = None
    rpm_limit: int | None = None
    tpm_limit: int | None = None
    max_parallel_requests: int | None = None
    model_budgets: tuple[ModelBudget, ...] = ()
    rpm: Counter | None = field(default=None, compare=False)
    tpm: Counter | None = field(default=None, compare=False)
    parallel: Counter | None = field(default=None, compare=False)
    budget: Counter | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        base = f"{self.level.replace(' ', '_')}:{self.ident}"
        label = self.level
        if self.rpm_limit is not None:
            rpm = Counter(f"rpm:{base}", Kind.WINDOW, self.rpm_limit, take=1, label=label)
            object.__setattr__(self, "rpm", rpm)
        if self.tpm_limit is not None:
            tpm = Counter(f"tpm:{base}", Kind.WINDOW, self.tpm_limit, label=label)
            object.__setattr__(self, "tpm", tpm)
        if self.max_parallel_requests is not None:
            parallel = Counter(
                f"par:{base}",
                Kind.PARALLEL,
                self.max_parallel_requests,
                ttl_s=float(conf.GATEWAY_DEFAULT_TIMEOUT_S) + PARALLEL_LEASE_MARGIN_S,
                label=label,
            )
            object.__setattr__(self, "parallel", parallel)
        if self.max_budget is not None or self.soft_budget is not None:
            period = int(self.budget_reset_at.timestamp()) if self.budget_reset_at else 0
            object.__setattr__(
                self,
                "budget",
                Counter(
                    f"spend:{base}:{period}",
                    Kind.TOTAL,
                    None if self.max_budget is None else units(self.max_budget),
                    ttl_s=_ttl(self.budget_reset_at),
                    seed=units(self.spend),
                    label=label,
                ),
            )

    @property
    def counters(self) -> tuple[Counter, ...]:
        """The counters checked on every call of this scope (per-model budgets are added by
        the model of each call)."""
        return tuple(c for c in (self.rpm, self.tpm, self.parallel, self.budget) if c is not None)

    def model_budget_counter(self, model: str, now_s: float) -> tuple[ModelBudget, Counter] | None:
        for budget in self.model_budgets:
            if budget.model == model:
                window = int(now_s // budget.period_s)
                name = f"mspend:{self.level.replace(' ', '_')}:{self.ident}:{model}:{window}"
                counter = Counter(
                    name, Kind.TOTAL, units(budget.limit), ttl_s=budget.period_s, label=self.level
                )
                return budget, counter
        return None


def _ttl(reset_at: datetime | None) -> float:
    if reset_at is None:
        return 0.0
    from django.utils import timezone

    return max(60.0, (reset_at - timezone.now()).total_seconds() + _TOTAL_GRACE_S)


def _effective(obj: Any, name: str) -> Any:
    value = getattr(obj, name, None)
    if value is None or value == "":
        budget = getattr(obj, "budget", None) if _has_budget_fk(obj) else None
        if budget is not None:
            value = getattr(budget, name, None)
    return value


def _has_budget_fk(obj: Any) -> bool:
    meta = getattr(obj, "_meta", None)
    if meta is None:
        return False
    try:
        meta.get_field("budget")
    except Exception:
        return False
    return True


def _decimal(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None


def _int(value: Any) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _model_budgets(raw: Any) -> tuple[ModelBudget, ...]:
    """LiteLLM's ``{model: {"budget_limit": x, "time_period": "1d"}}``; unreadable entries
    are skipped (validation belongs to the API that stores them)."""
    if not isinstance(raw, dict):
        return ()
    out = []
    for model, spec in raw.items():
        if not isinstance(spec, dict):
            continue
        limit = _decimal(spec.get("budget_limit", spec.get("max_budget")))
        period = duration_seconds(str(spec.get("time_period") or spec.get("budget_duration") or ""))
        if limit is not None and period:
            out.append(ModelBudget(model=str(model), limit=limit, period_s=period))
    return tuple(out)


def scope_of(level: str, ident: str, obj: Any) -> Scope | None:
    """The scope of a model row (key, team, ...), or None when it sets no limit at all."""
    scope = Scope(
        level=level,
        ident=ident,
        max_budget=_decimal(_effective(obj, "max_budget")),
        soft_budget=_decimal(_effective(obj, "soft_budget")),
        spend=_decimal(getattr(obj, "spend", None)) or Decimal(0),
        budget_reset_at=getattr(obj, "budget_reset_at", None),
        rpm_limit=_int(_effective(obj, "rpm_limit")),
        tpm_limit=_int(_effective(obj, "tpm_limit")),
        max_parallel_requests=_int(_effective(obj, "max_parallel_requests")),
        model_budgets=_model_budgets(_effective(obj, "model_max_budget")),
    )
    if not scope.counters and not scope.model_budgets:
        return None
    meta = getattr(obj, "_meta", None)
    if scope.budget is not None and meta is not None:
        from apps.keys import spend_sync

        spend_sync.watch(meta.label, obj.pk, scope.budget.name)
    return scope
