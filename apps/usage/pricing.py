"""Cost of a request from the bundled price table (``data/model_prices.json``, USD per million
tokens, from the providers' public price pages) or a deployment's own prices."""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from pathlib import Path

from apps.providers.schemas import Usage

_MILLION = Decimal(1_000_000)
_PATH = Path(__file__).parent / "data" / "model_prices.json"


@dataclass(frozen=True, slots=True)
class Price:
    """USD per token."""

    input: Decimal = Decimal(0)
    output: Decimal = Decimal(0)
    cache_read: Decimal | None = None
    cache_write: Decimal | None = None


def _per_token(value: object) -> Decimal | None:
    if value is None:
        return None
    return Decimal(str(value)) / _MILLION


@cache
def price_table() -> dict[str, Price]:
    try:
        raw = json.loads(_PATH.read_text())
    except FileNotFoundError:
        return {}
    table = {}
    for name, entry in raw.get("models", {}).items():
        table[name] = Price(
            input=_per_token(entry.get("input")) or Decimal(0),
            output=_per_token(entry.get("output")) or Decimal(0),
            cache_read=_per_token(entry.get("cache_read")),
            cache_write=_per_token(entry.get("cache_write")),
        )
    return table


def lookup(provider: str, model: str) -> Price | None:
    """The bundled price for ``provider/model``, else for ``model``; None when unknown."""
    table = price_table()
    return table.get(f"{provider}/{model}") or table.get(model)


def cost_of(
    usage: Usage | None,
    price: Price | None,
    *,
    input_override: Decimal | None = None,
    output_override: Decimal | None = None,
    cache_read_override: Decimal | None = None,
) -> Decimal:
    """USD cost. Cached and cache-creation tokens are part of ``prompt_tokens`` (OpenAI's
    convention) and are charged at their own rates where known."""
    if usage is None:
        return Decimal(0)
    base = price or Price()
    input_price = input_override if input_override is not None else base.input
    output_price = output_override if output_override is not None else base.output
    cache_read = (
        cache_read_override
        if cache_read_override is not None
        else base.cache_read
        if base.cache_read is not None
        else input_price
    )
    cache_write = base.cache_write if base.cache_write is not None else input_price
    cached = min(usage.cached_tokens, usage.prompt_tokens)
    created = min(usage.cache_creation_tokens, usage.prompt_tokens - cached)
    plain = usage.prompt_tokens - cached - created
    return (
        plain * input_price
        + cached * cache_read
        + created * cache_write
        + usage.completion_tokens * output_price
    )
