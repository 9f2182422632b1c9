"""Load-balancing strategies: the order in which a group's deployments are tried.

Deployments are tried by priority tier first (``order``: lower first); within a tier the
strategy decides. Each strategy is a sort key, so ordering 50 deployments costs a few tens of
microseconds (``bench/routing_decision.py``).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence

from apps.routing import state
from apps.routing.selectors import Candidate, shuffle_weights

PriceOf = Callable[[Candidate], float | None]


def _shuffle_keys(candidates: Sequence[Candidate]) -> list[float]:
    """Efraimidis-Spirakis: sorting by ``-u ** (1 / w)`` is a weighted random permutation (the
    first is picked with probability ``w / sum(w)``, the next among the rest likewise...)."""
    rnd = random.random
    if candidates[0].share is None:
        weights = shuffle_weights(candidates)
    else:
        weights = [c.share or 1.0 for c in candidates]
    first = weights[0]
    if all(w == first for w in weights):
        return [-rnd() for _ in weights]
    return [-(rnd() ** (1.0 / w)) if w > 0 else 0.0 for w in weights]


def _usage_ratio(candidate: Candidate, minute: int) -> float:
    """This minute's use (every instance's) against the deployment's limits."""
    requests, tokens = state.used_this_minute(candidate.target.deployment_id, minute)
    ratios = []
    if candidate.rpm:
        ratios.append(requests / candidate.rpm)
    if candidate.tpm:
        ratios.append(tokens / candidate.tpm)
    if ratios:
        return max(ratios)
    # No limits: the fewest tokens this minute first (a large number keeps them after
    # deployments that still have headroom under a limit).
    return 1.0 + tokens


def order(
    candidates: Sequence[Candidate],
    strategy: str,
    *,
    stream: bool = False,
    price_of: PriceOf | None = None,
    latency_buffer: float = 0.0,
) -> list[Candidate]:
    """``candidates`` in the order to try them."""
    if len(candidates) == 1:
        return list(candidates)
    rnd = random.random
    if strategy == "least-busy":
        keys = [state.in_flight(c.target.deployment_id) + rnd() * 0.5 for c in candidates]
    elif strategy == "latency-based-routing":
        keys = _latency_keys(candidates, stream, latency_buffer)
    elif strategy in ("usage-based-routing-v2", "usage-based-routing"):
        minute = state.current_minute()
        keys = [_usage_ratio(c, minute) + rnd() * 1e-6 for c in candidates]
    elif strategy == "cost-based-routing":
        keys = []
        for c in candidates:
            price = price_of(c) if price_of is not None else None
            keys.append((math.inf if price is None else price) + rnd() * 1e-18)
    else:
        keys = _shuffle_keys(candidates)
    first = candidates[0].order
    if all(c.order == first for c in candidates):
        ranked = sorted(range(len(candidates)), key=keys.__getitem__)
    else:
        ranked = sorted(range(len(candidates)), key=lambda i: (candidates[i].order, keys[i]))
    return [candidates[i] for i in ranked]


def _latency_keys(candidates: Sequence[Candidate], stream: bool, buffer: float) -> list[float]:
    """Lowest moving-average latency first; a deployment without a figure yet is tried first
    (so every one gets measured); those within ``buffer`` (a fraction) of the fastest are
    equals, in random order, so the fastest is not the only one used."""
    latencies = [state.latency(c.target.deployment_id, stream) for c in candidates]
    known = [v for v in latencies if v is not None]
    best = min(known) if known else 0.0
    limit = best * (1.0 + buffer)
    rnd = random.random
    keys = []
    for value in latencies:
        if value is None:
            keys.append(-1.0 + rnd() * 0.5)
        elif value <= limit:
            keys.append(best + rnd() * 1e-9)
        else:
            keys.append(value)
    return keys
