"""Admission of a call against every limit and budget of its caller, and settling it after.

:func:`admit` checks, in one limiter round trip, the rpm, tpm, parallel and budget counters of
every scope of the call (key, team, organization, user, team member, end user) plus the
per-model budgets for the requested model and any counters the caller adds (routing's
deployment limits). The first that is spent refuses the call with :class:`RateLimited` or
:class:`BudgetExceeded`, carrying ``retry-after`` and the ``x-ratelimit-*`` headers.
:func:`settle` releases the parallel slots and charges the real tokens and cost.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from django.utils import timezone

from apps.core import ratelimit
from apps.core.errors import BudgetExceeded, RateLimited
from apps.core.ratelimit import Counter, Kind, Outcome
from apps.keys.scopes import Scope, dollars, units

logger = logging.getLogger(__name__)

Headers = list[tuple[bytes, bytes]]


@dataclass(slots=True)
class Admission:
    """A call let in: what it holds and what to charge when it ends."""

    scopes: tuple[Scope, ...]
    model: str
    outcome: Outcome
    # (scope, counter) of the per-model budgets that apply to this call.
    model_budgets: tuple[tuple[Scope, Counter], ...]
    settled: bool = False

    def headers(self) -> Headers:
        return rate_headers(self.scopes, self.outcome)


def _pick(scopes: Sequence[Scope], outcome: Outcome, attr: str) -> tuple[int, int] | None:
    """(limit, remaining) of the tightest ``attr`` counter ("rpm" or "tpm")."""
    best: tuple[int, int] | None = None
    for scope in scopes:
        counter: Counter | None = getattr(scope, attr)
        if counter is None or counter.limit is None:
            continue
        remaining = outcome.remaining(counter)
        if remaining is None:
            continue
        if best is None or remaining < best[1]:
            best = (counter.limit, remaining)
    return best


def rate_headers(scopes: Sequence[Scope], outcome: Outcome) -> Headers:
    headers: Headers = []
    requests = _pick(scopes, outcome, "rpm")
    if requests is not None:
        headers.append((b"x-ratelimit-limit-requests", str(requests[0]).encode()))
        headers.append((b"x-ratelimit-remaining-requests", str(requests[1]).encode()))
    tokens = _pick(scopes, outcome, "tpm")
    if tokens is not None:
        headers.append((b"x-ratelimit-limit-tokens", str(tokens[0]).encode()))
        headers.append((b"x-ratelimit-remaining-tokens", str(tokens[1]).encode()))
    return headers


def _when(reset_at: datetime | None) -> str:
    if reset_at is None:
        return "it does not reset"
    return "it resets at " + reset_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _refusal(
    scopes: Sequence[Scope],
    model: str,
    outcome: Outcome,
    model_budgets: Sequence[tuple[Scope, Counter]],
) -> RateLimited | BudgetExceeded:
    refused = outcome.refused
    assert refused is not None
    used = outcome.used[outcome.counters.index(refused)]
    headers = {k.decode(): v.decode() for k, v in rate_headers(scopes, outcome)}
    for scope, counter in model_budgets:
        if counter is refused:
            return BudgetExceeded(
                f"Budget has been exceeded! The {scope.level} budget for model '{model}': "
                f"max budget {dollars(refused.limit or 0)} USD, current spend "
                f"{dollars(used)} USD; it resets with the current "
                f"{_period(scope, model)} window.",
                headers=headers,
            )
    scope = next(s for s in scopes if refused in s.counters)
    if refused.kind is Kind.TOTAL:
        retry = _seconds_until(scope.budget_reset_at)
        if retry is not None:
            headers["retry-after"] = str(retry)
        return BudgetExceeded(
            f"Budget has been exceeded! The {scope.level} budget: max budget "
            f"{dollars(refused.limit or 0)} USD, current spend {dollars(used)} USD; "
            f"{_when(scope.budget_reset_at)}.",
            headers=headers,
        )
    retry_s = max(1, math.ceil(outcome.retry_after_s))
    headers["retry-after"] = str(retry_s)
    if refused.kind is Kind.PARALLEL:
        message = (
            f"Max parallel request limit reached for this {scope.level}: {used} requests in "
            f"flight, limit {refused.limit}."
        )
    elif refused is scope.rpm:
        message = (
            f"Rate limit exceeded for this {scope.level}: {used} requests in the last minute, "
            f"rpm limit {refused.limit}. Retry after {retry_s} s."
        )
    else:
        message = (
            f"Rate limit exceeded for this {scope.level}: {used} tokens in the last minute, "
            f"tpm limit {refused.limit}. Retry after {retry_s} s."
        )
    return RateLimited(message, headers=headers)


def _period(scope: Scope, model: str) -> str:
    for budget in scope.model_budgets:
        if budget.model == model:
            seconds = budget.period_s
            if seconds % 86400 == 0:
                return f"{int(seconds // 86400)}-day"
            return f"{int(seconds)}-second"
    return ""


def _seconds_until(when: datetime | None) -> int | None:
    if when is None:
        return None
    return max(1, math.ceil((when - timezone.now()).total_seconds()))


async def admit(
    *, scopes: Sequence[Scope], model: str, extra: Sequence[Counter] = ()
) -> Admission | None:
    """Check and take every counter of ``scopes`` (and ``extra``) for a call of ``model``.
    Returns None when nothing limits the call; raises RateLimited or BudgetExceeded."""
    scopes = tuple(scopes)
    counters: list[Counter] = []
    model_budgets: list[tuple[Scope, Counter]] = []
    now_s = time.time()
    for scope in scopes:
        counters.extend(scope.counters)
        if scope.model_budgets:
            found = scope.model_budget_counter(model, now_s)
            if found is not None:
                model_budgets.append((scope, found[1]))
                counters.append(found[1])
    counters.extend(extra)
    if not counters:
        return None
    outcome = await ratelimit.acquire(counters)
    if not outcome.allowed:
        raise _refusal(scopes, model, outcome, model_budgets)
    return Admission(
        scopes=scopes, model=model, outcome=outcome, model_budgets=tuple(model_budgets)
    )


async def settle(admission: Admission, *, tokens: int, cost: Decimal) -> None:
    """Release the call's parallel slots and charge its tokens and cost (once)."""
    if admission.settled:
        return
    admission.settled = True
    amount = units(cost) if cost > 0 else 0
    charges: list[tuple[Counter, int]] = []
    for scope in admission.scopes:
        if scope.tpm is not None and tokens > 0:
            charges.append((scope.tpm, tokens))
        if scope.budget is not None and amount:
            charges.append((scope.budget, amount))
    for _scope, counter in admission.model_budgets:
        if amount:
            charges.append((counter, amount))
    values = await ratelimit.settle(admission.outcome.lease, charges)
    if amount:
        _soft_alerts(admission.scopes, values, amount)


def _soft_alerts(scopes: Sequence[Scope], values: dict[str, int], amount: int) -> None:
    """Log once when a call takes a scope's spend across its soft budget (only the call that
    crosses it sees ``before < soft <= after``) or its max budget."""
    for scope in scopes:
        if scope.budget is None:
            continue
        after = values.get(scope.budget.name)
        if after is None:
            continue
        before = after - amount
        for name, threshold in (("soft budget", scope.soft_budget), ("budget", scope.max_budget)):
            if threshold is None:
                continue
            limit = units(threshold)
            if before < limit <= after:
                logger.warning(
                    "%s %s reached its %s: spend %s USD, %s %s USD",
                    scope.level,
                    scope.ident,
                    name,
                    dollars(after),
                    name,
                    threshold,
                )
