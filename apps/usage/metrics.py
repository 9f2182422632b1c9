"""Prometheus metrics, counted from the usage rows in the writer's batches (nothing per request
on the request path but one integer for in-flight calls), so ``/metrics`` and the usage log
always tell the same story.

With ``serve --workers N`` each worker writes its values to ``PROMETHEUS_MULTIPROC_DIR`` (set
by ``serve`` before the workers start) and a scrape of any worker reads them all. Names follow
LiteLLM's, so existing dashboards keep working.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Iterable, Iterator
from decimal import Decimal
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

Row = dict[str, Any]

_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, float("inf"))
_TTFT_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, float("inf"))
_BY_TARGET = ["model_group", "deployment", "provider"]

REQUESTS = Counter(
    "litellm_requests_metric",
    "Calls, by model group, deployment, call type and status code.",
    [*_BY_TARGET, "call_type", "status_code"],
)
FAILURES = Counter(
    "litellm_proxy_failed_requests_metric",
    "Calls that ended in an error, by model group and error type.",
    ["model_group", "error_type", "status_code"],
)
INPUT_TOKENS = Counter("litellm_input_tokens_metric", "Prompt tokens.", _BY_TARGET)
OUTPUT_TOKENS = Counter("litellm_output_tokens_metric", "Completion tokens.", _BY_TARGET)
TOTAL_TOKENS = Counter("litellm_total_tokens_metric", "Prompt plus completion tokens.", _BY_TARGET)
SPEND = Counter(
    "litellm_spend_metric", "Spend in USD, by model group, team and key.", ["model", "team", "key"]
)
LATENCY = Histogram(
    "litellm_request_total_latency_metric",
    "Whole call time in seconds.",
    _BY_TARGET,
    buckets=_LATENCY_BUCKETS,
)
TTFT = Histogram(
    "litellm_llm_api_time_to_first_token_metric",
    "Time to a stream's first token in seconds.",
    _BY_TARGET,
    buckets=_TTFT_BUCKETS,
)
IN_FLIGHT = Gauge(
    "litellm_in_flight_requests", "Calls being served now.", multiprocess_mode="livesum"
)
QUEUE = Gauge(
    "gateway_usage_queue_depth", "Usage rows waiting to be written.", multiprocess_mode="livesum"
)
QUARANTINED = Counter("gateway_usage_quarantined_rows", "Usage rows the database refused.")
SPOOLED = Counter("gateway_usage_spooled_rows", "Usage rows sent to the disk spool.")


class InFlight:
    """Calls in progress in this process: a plain integer on the request path, copied to the
    gauge by the writer's loop."""

    value = 0


def meter(rows: Iterable[Row]) -> None:
    """Count a batch of new usage rows (each row once, whether or not it is written yet)."""
    requests: dict[tuple[str, ...], int] = defaultdict(int)
    failures: dict[tuple[str, ...], int] = defaultdict(int)
    tokens: dict[tuple[str, ...], list[int]] = {}
    spend: dict[tuple[str, ...], Decimal] = defaultdict(Decimal)
    for row in rows:
        group = row.get("model_group") or ""
        target = (group, row.get("deployment_id") or "", row.get("provider") or "")
        status = str(row.get("status_code", 0))
        requests[(*target, row.get("call_type") or "", status)] += 1
        if row.get("status_code", 0) >= 400:
            failures[(group, row.get("error_type") or "", status)] += 1
        counts = tokens.setdefault(target, [0, 0])
        counts[0] += row.get("prompt_tokens") or 0
        counts[1] += row.get("completion_tokens") or 0
        cost = row.get("cost") or 0
        if cost:
            team, key = row.get("team_id"), row.get("key_id")
            spend[(group, "" if team is None else str(team), "" if key is None else str(key))] += (
                cost
            )
        LATENCY.labels(*target).observe((row.get("latency_ms") or 0) / 1000)
        if row.get("ttft_ms") is not None:
            TTFT.labels(*target).observe(row["ttft_ms"] / 1000)
    for labels, n in requests.items():
        REQUESTS.labels(*labels).inc(n)
    for labels, n in failures.items():
        FAILURES.labels(*labels).inc(n)
    for labels, (prompt, completion) in tokens.items():
        INPUT_TOKENS.labels(*labels).inc(prompt)
        OUTPUT_TOKENS.labels(*labels).inc(completion)
        TOTAL_TOKENS.labels(*labels).inc(prompt + completion)
    for labels, amount in spend.items():
        SPEND.labels(*labels).inc(float(amount))


class BudgetCollector(Collector):
    """Remaining budget per team and key (the effective ``max_budget``: inline, else the
    shared budget's, minus ``spend``), read from the database at scrape time."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from django.db.models import Q

        from apps.keys.models import VirtualKey
        from apps.teams.models import Team

        budgeted = Q(max_budget__isnull=False) | Q(budget__max_budget__isnull=False)
        teams = GaugeMetricFamily(
            "litellm_remaining_team_budget_metric",
            "Team budget left in USD (max_budget - spend).",
            labels=["team", "team_alias"],
        )
        for team in Team.objects.select_related("budget").filter(budgeted):
            limit = team.effective("max_budget")
            if limit is not None:
                teams.add_metric([team.team_id, team.team_alias], float(limit - team.spend))
        yield teams
        keys = GaugeMetricFamily(
            "litellm_remaining_api_key_budget_metric",
            "Key budget left in USD (max_budget - spend).",
            labels=["key", "key_alias"],
        )
        for key in VirtualKey.objects.select_related("budget").filter(budgeted):
            limit = key.effective("max_budget")
            if limit is not None:
                keys.add_metric([str(key.pk), key.key_alias], float(limit - key.spend))
        yield keys


def exposition() -> bytes:
    """The text format of every metric (all workers' when running several)."""
    from prometheus_client import REGISTRY

    extra = CollectorRegistry(auto_describe=False)
    extra.register(BudgetCollector())
    for collector in _extra_collectors:
        extra.register(collector)
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry) + generate_latest(extra)
    return generate_latest(REGISTRY) + generate_latest(extra)


_extra_collectors: list[Collector] = []


def register_collector(collector: Collector) -> None:
    """Add a scrape-time collector (routing's deployment state, say) to ``/metrics``."""
    _extra_collectors.append(collector)
