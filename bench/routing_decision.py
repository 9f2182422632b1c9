"""The cost of one routing decision: ordering a group's deployments by strategy and taking the
first available one (cooldown check, rpm/tpm check-and-take), as each request does.

Run with the project's virtualenv: ``.venv/bin/python bench/routing_decision.py [--deployments
50] [--iterations 20000]``. Without ``REDIS_URL`` (the default here) everything is in process;
with it, a deployment with an rpm limit costs a Redis round trip, which this measures too
(``--redis``). Prints microseconds per decision, median of five runs, per strategy.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "proxy_project.settings")

STRATEGIES = (
    "simple-shuffle",
    "least-busy",
    "latency-based-routing",
    "usage-based-routing-v2",
    "cost-based-routing",
)


def _group(n: int, limited: bool) -> object:
    from apps.providers.schemas import Target
    from apps.routing.selectors import Candidate, Group

    candidates = tuple(
        Candidate(
            target=Target(deployment_id=f"bench-{i}", provider="openai", model=f"m{i}"),
            weight=1 + i % 4,
            rpm=10**9 if limited else None,
            tpm=10**12 if limited else None,
        )
        for i in range(n)
    )
    return Group(name="bench", candidates=candidates)


async def _decide(group: object, strategy: str, iterations: int) -> float:
    import dataclasses

    from apps.gateway.attempts import price_of
    from apps.routing import state
    from apps.routing.policy import RouterSettings
    from apps.routing.router import Plan

    settings = dataclasses.replace(RouterSettings(), routing_strategy=strategy)
    candidates = group.candidates  # type: ignore[attr-defined]
    for i, c in enumerate(candidates):  # figures for the strategies to read
        state.record_latency(c.target.deployment_id, 0.01 + i * 1e-4, None)
    start = time.perf_counter()
    for _ in range(iterations):
        plan = Plan(group, candidates, settings, stream=False, tokens=10, price_of=price_of)  # type: ignore[arg-type]
        chosen = await plan.next()
        state.started(chosen.target.deployment_id)
        state.ended(chosen.target.deployment_id)
    return (time.perf_counter() - start) / iterations * 1e6


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--deployments", type=int, default=50)
    parser.add_argument("--iterations", type=int, default=20000)
    parser.add_argument("--redis", action="store_true", help="use REDIS_URL (must be set)")
    args = parser.parse_args()
    if not args.redis:
        os.environ.pop("REDIS_URL", None)
    import django

    django.setup()
    print(f"{args.deployments} deployments in one group, {args.iterations} decisions per run")
    print(f"{'strategy':<24}{'no limits µs':>14}{'rpm/tpm µs':>12}")
    for strategy in STRATEGIES:
        row = []
        for limited in (False, True):
            group = _group(args.deployments, limited)
            runs = [await _decide(group, strategy, args.iterations) for _ in range(5)]
            row.append(statistics.median(runs))
        print(f"{strategy:<24}{row[0]:>14.1f}{row[1]:>12.1f}")


if __name__ == "__main__":
    asyncio.run(main())
