"""Request cost from the bundled price table and per-deployment overrides."""

from __future__ import annotations

from decimal import Decimal

import pytest

from apps.providers.schemas import Usage
from apps.usage.pricing import Price, cost_of, lookup, price_table

MILLION = Decimal(1_000_000)


def test_gpt_4o_mini_list_price():
    # https://platform.openai.com/docs/pricing: $0.15 input, $0.60 output, $0.075 cached input
    price = lookup("openai", "gpt-4o-mini")
    assert price == Price(
        input=Decimal("0.15") / MILLION,
        output=Decimal("0.60") / MILLION,
        cache_read=Decimal("0.075") / MILLION,
    )


def test_lookup_prefers_the_provider_qualified_entry(monkeypatch):
    table = {
        "gpt-x": Price(input=Decimal(1)),
        "azure/gpt-x": Price(input=Decimal(2)),
    }
    monkeypatch.setattr("apps.usage.pricing.price_table", lambda: table)
    assert lookup("azure", "gpt-x").input == 2
    assert lookup("openai", "gpt-x").input == 1
    assert lookup("openai", "unknown") is None


def test_every_bundled_price_is_non_negative():
    table = price_table()
    assert len(table) > 20
    for name, price in table.items():
        assert price.input >= 0 and price.output >= 0, name
        assert price.cache_read is None or price.cache_read >= 0, name


def test_cost_of_plain_usage():
    price = lookup("openai", "gpt-4o-mini")
    usage = Usage(prompt_tokens=1000, completion_tokens=500)
    assert cost_of(usage, price) == Decimal("0.00015") + Decimal("0.0003")


def test_cached_prompt_tokens_are_charged_at_the_cache_rate():
    price = lookup("openai", "gpt-4o-mini")
    usage = Usage(prompt_tokens=1000, completion_tokens=0, cached_tokens=400)
    expected = 600 * Decimal("0.15") / MILLION + 400 * Decimal("0.075") / MILLION
    assert cost_of(usage, price) == expected


def test_cache_creation_tokens_use_the_cache_write_rate():
    price = Price(
        input=Decimal(1), output=Decimal(10), cache_read=Decimal("0.1"), cache_write=Decimal("1.25")
    )
    usage = Usage(
        prompt_tokens=100, completion_tokens=2, cached_tokens=30, cache_creation_tokens=50
    )
    assert cost_of(usage, price) == 20 * 1 + 30 * Decimal("0.1") + 50 * Decimal("1.25") + 20


def test_more_cached_tokens_than_prompt_tokens_never_go_negative():
    price = Price(input=Decimal(1), output=Decimal(0), cache_read=Decimal("0.5"))
    usage = Usage(prompt_tokens=10, cached_tokens=50, cache_creation_tokens=50)
    assert cost_of(usage, price) == 5


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (
            {"input_override": Decimal("0.01")},
            100 * Decimal("0.01") + 10 * Decimal("0.6") / MILLION,
        ),
        (
            {"output_override": Decimal("0.02")},
            100 * Decimal("0.15") / MILLION + 10 * Decimal("0.02"),
        ),
        ({"input_override": Decimal(0), "output_override": Decimal(0)}, Decimal(0)),
    ],
)
def test_deployment_overrides_win(overrides, expected):
    usage = Usage(prompt_tokens=100, completion_tokens=10)
    assert cost_of(usage, lookup("openai", "gpt-4o-mini"), **overrides) == expected


def test_unknown_model_without_override_is_free():
    assert cost_of(Usage(prompt_tokens=100, completion_tokens=10), None) == 0


def test_no_usage_costs_nothing():
    assert cost_of(None, lookup("openai", "gpt-4o-mini")) == 0
