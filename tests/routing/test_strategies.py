"""Each strategy's choice of the first deployment, within statistical bounds."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator

import pytest

from apps.providers.schemas import Target
from apps.routing import state, strategies
from apps.routing.selectors import Candidate, PriceOverride

N = 4000


@pytest.fixture(autouse=True)
def _clean_state() -> Iterator[None]:
    state.reset()
    random.seed(20261201)
    yield
    state.reset()


def cand(name: str, **kwargs: object) -> Candidate:
    target = Target(deployment_id=name, provider="openai", model=name)
    return Candidate(target=target, **kwargs)  # type: ignore[arg-type]


def firsts(candidates: list[Candidate], strategy: str, **kwargs: object) -> Counter[str]:
    out: Counter[str] = Counter()
    for _ in range(N):
        ordered = strategies.order(candidates, strategy, **kwargs)  # type: ignore[arg-type]
        assert sorted(c.target.deployment_id for c in ordered) == sorted(
            c.target.deployment_id for c in candidates
        )
        out[ordered[0].target.deployment_id] += 1
    return out


def share(counts: Counter[str], name: str) -> float:
    return counts[name] / N


def test_simple_shuffle_follows_weights() -> None:
    counts = firsts([cand("a", weight=1), cand("b", weight=3)], "simple-shuffle")
    assert 0.72 < share(counts, "b") < 0.78


def test_simple_shuffle_follows_rpm_without_weights() -> None:
    counts = firsts([cand("a", rpm=100), cand("b", rpm=900)], "simple-shuffle")
    assert 0.87 < share(counts, "b") < 0.93


def test_simple_shuffle_is_even_without_weights_or_limits() -> None:
    counts = firsts([cand("a"), cand("b"), cand("c")], "simple-shuffle")
    for name in "abc":
        assert 0.30 < share(counts, name) < 0.37


@pytest.mark.parametrize(
    "strategy",
    [
        "simple-shuffle",
        "least-busy",
        "latency-based-routing",
        "usage-based-routing-v2",
        "cost-based-routing",
    ],
)
def test_order_tiers_come_first_whatever_the_strategy(strategy: str) -> None:
    counts = firsts([cand("late", order=2), cand("early", order=1, weight=1)], strategy)
    assert counts["early"] == N


def test_least_busy_picks_the_fewest_in_flight() -> None:
    for _ in range(3):
        state.started("a")
    state.started("b")
    counts = firsts([cand("a"), cand("b"), cand("c")], "least-busy")
    assert counts["c"] == N
    state.started("c")
    state.started("c")
    counts = firsts([cand("a"), cand("b"), cand("c")], "least-busy")
    assert counts["b"] == N


def test_least_busy_breaks_ties_at_random() -> None:
    counts = firsts([cand("a"), cand("b")], "least-busy")
    assert 0.45 < share(counts, "a") < 0.55


def test_latency_based_prefers_the_fastest_and_measures_the_unknown_first() -> None:
    state.record_latency("a", 0.200, None)
    state.record_latency("b", 0.050, None)
    counts = firsts([cand("a"), cand("b"), cand("new")], "latency-based-routing")
    assert counts["new"] == N
    state.record_latency("new", 0.400, None)
    counts = firsts([cand("a"), cand("b"), cand("new")], "latency-based-routing")
    assert counts["b"] == N


def test_latency_buffer_spreads_over_the_nearly_fastest() -> None:
    state.record_latency("a", 0.100, None)
    state.record_latency("b", 0.110, None)
    state.record_latency("c", 0.500, None)
    counts = firsts([cand("a"), cand("b"), cand("c")], "latency-based-routing", latency_buffer=0.2)
    assert 0.45 < share(counts, "b") < 0.55
    assert counts["c"] == 0


def test_latency_based_uses_time_to_first_token_for_streams() -> None:
    state.record_latency("a", 1.0, 0.05)
    state.record_latency("b", 0.5, 0.30)
    assert firsts([cand("a"), cand("b")], "latency-based-routing", stream=True)["a"] == N
    assert firsts([cand("a"), cand("b")], "latency-based-routing")["b"] == N


def test_usage_based_picks_the_most_headroom_this_minute() -> None:
    minute = state.current_minute()
    for _ in range(8):
        state.take("a", minute)
    for _ in range(3):
        state.take("b", minute)
    counts = firsts([cand("a", rpm=10), cand("b", rpm=10)], "usage-based-routing-v2")
    assert counts["b"] == N
    state.add_tokens("b", 900)
    counts = firsts([cand("a", rpm=10), cand("b", rpm=10, tpm=1000)], "usage-based-routing-v2")
    assert counts["a"] == N


def test_cost_based_picks_the_cheapest() -> None:
    prices = {"a": 3e-6, "b": 1e-6, "c": None}
    candidates = [
        cand("a", prices=PriceOverride()),
        cand("b"),
        cand("c"),
    ]
    counts = firsts(
        candidates,
        "cost-based-routing",
        price_of=lambda c: prices[c.target.deployment_id],
    )
    assert counts["b"] == N


def test_ordering_fifty_deployments_is_cheap() -> None:
    import time

    candidates = [cand(f"d{i}", weight=1 + i % 5) for i in range(50)]
    for strategy in ("simple-shuffle", "least-busy", "latency-based-routing"):
        start = time.perf_counter()
        for _ in range(200):
            strategies.order(candidates, strategy)
        per_call = (time.perf_counter() - start) / 200
        assert per_call < 0.001, (strategy, per_call)


def test_usage_based_counts_the_other_instances_too() -> None:
    minute = state.current_minute()
    state.take("a", minute)
    found = state.stats("b")
    found.remote_minute = minute
    found.remote_requests = 5
    counts = firsts([cand("a", rpm=10), cand("b", rpm=10)], "usage-based-routing-v2")
    assert counts["a"] == N


def test_least_busy_counts_the_other_instances_too() -> None:
    state.started("a")
    state.stats("b").remote_in_flight = 3
    counts = firsts([cand("a"), cand("b")], "least-busy")
    assert counts["a"] == N
