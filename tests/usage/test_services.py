"""Usage rows built on the request path: cost, truncation, and values PostgreSQL refuses."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from apps.keys.auth import Principal
from apps.providers.schemas import Target, Usage
from apps.routing.selectors import Candidate, PriceOverride
from apps.usage import services
from apps.usage.services import UsageEvent, request_cost, usage_record


class Recorder:
    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def record(self, row: dict[str, Any]) -> None:
        self.rows.append(row)


@pytest.fixture
def recorded(monkeypatch) -> list[dict[str, Any]]:
    recorder = Recorder()
    monkeypatch.setattr(services, "writer", recorder)
    return recorder.rows


def candidate(model: str = "gpt-4o-mini", **prices: Decimal) -> Candidate:
    target = Target(deployment_id="dep-1", provider="openai", model=model)
    return Candidate(target=target, prices=PriceOverride(**prices))


def event(**fields: Any) -> UsageEvent:
    values: dict[str, Any] = {
        "request_id": "req-1",
        "call_type": "chat",
        "principal": None,
        "model_group": "gpt",
        "start_time": timezone.now(),
        "latency_ms": 250,
        "status_code": 200,
    }
    values.update(fields)
    return UsageEvent(**values)


def test_row_carries_tokens_cost_and_parties(recorded):
    principal = Principal(key_id=7, key_alias="ci", team_id=3, organization_id=2, user_id="u")
    usage = Usage(prompt_tokens=100, completion_tokens=20, cached_tokens=10)
    start = timezone.now()
    cost = usage_record(
        event(principal=principal, candidate=candidate(), usage=usage, start_time=start)
    )
    [row] = recorded
    # gpt-4o-mini, USD per million tokens: 0.15 input, 0.075 cached input, 0.60 output.
    assert cost == row["cost"] == Decimal("0.00002625")  # 90 x 0.15 + 10 x 0.075 + 20 x 0.60
    assert (row["key_id"], row["key_alias"], row["team_id"]) == (7, "ci", 3)
    assert (row["organization_id"], row["user_id"]) == (2, "u")
    assert (row["deployment_id"], row["provider"], row["upstream_model"]) == (
        "dep-1",
        "openai",
        "gpt-4o-mini",
    )
    assert (row["prompt_tokens"], row["completion_tokens"], row["cached_tokens"]) == (100, 20, 10)
    assert row["total_tokens"] == 120
    assert row["end_time"] - row["start_time"] == timedelta(milliseconds=250)


def test_given_cost_is_kept(recorded):
    usage_record(event(candidate=candidate(), usage=Usage(prompt_tokens=5), cost=Decimal("9")))
    assert recorded[0]["cost"] == 9


def test_row_without_deployment_or_usage_costs_nothing(recorded):
    assert usage_record(event(status_code=404)) == 0
    row = recorded[0]
    assert (row["deployment_id"], row["provider"], row["prompt_tokens"]) == ("", "", 0)


def test_long_values_are_cut_to_their_columns(recorded):
    usage_record(
        event(
            end_user="u" * 500,
            model_group="m" * 600,
            error_type="e" * 300,
            error_message="x" * 10_000,
        )
    )
    row = recorded[0]
    assert (len(row["end_user"]), len(row["model_group"])) == (200, 255)
    assert (len(row["error_type"]), len(row["error_message"])) == (100, 2000)


def test_metadata_over_the_limit_is_replaced_by_a_marker(recorded):
    usage_record(event(metadata={"big": "x" * 20_000}))
    usage_record(event(metadata={"ok": [1, 2]}))
    assert recorded[0]["metadata"] == {"_truncated": True}
    assert recorded[1]["metadata"] == {"ok": [1, 2]}


def test_usage_record_strips_nul_characters(recorded):
    """PostgreSQL text and jsonb cannot hold NUL; one such row failed every batch with it."""
    usage_record(
        event(
            end_user="a\x00b",
            model_group="g\x00",
            error_type="t\x00",
            error_message="bad role 'user\x00'",
            candidate=candidate(model="m\x00odel"),
            metadata={"k\x00": ["v\x00", {"x": "\x00", "n": 1}], "plain": "\\u0000"},
        )
    )
    row = recorded[0]
    assert (row["end_user"], row["model_group"], row["error_type"]) == ("ab", "g", "t")
    assert row["error_message"] == "bad role 'user'"
    assert row["upstream_model"] == "model"
    # A literal backslash-u sequence is text, not a NUL: it stays.
    assert row["metadata"] == {"k": ["v", {"x": "", "n": 1}], "plain": "\\u0000"}


def test_deployment_prices_win_over_the_list_price():
    """USD per token set on the deployment (LiteLLM's input_cost_per_token and friends)."""
    priced = candidate(input=Decimal("0.000002"), output=Decimal("0.00001"))
    usage = Usage(prompt_tokens=1000, completion_tokens=100)
    assert request_cost(priced, usage) == Decimal("0.003")  # 1000 x 0.000002 + 100 x 0.00001
