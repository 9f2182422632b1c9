"""Cost of each provider's usage shape against figures worked out by hand here (list prices
per million tokens from apps/usage/data/model_prices.json), and a stream costing exactly what
the same call costs without streaming."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest

from apps.providers.anthropic.response import usage_from_anthropic
from apps.providers.bedrock.response import usage_from_bedrock
from apps.providers.gemini.response import usage_from
from apps.providers.schemas import Target, Usage
from apps.routing.selectors import Candidate, PriceOverride
from apps.usage.services import request_cost
from tests.fakes import anthropic as fake_anthropic
from tests.fakes.server import BackgroundServer
from tests.gateway.helpers import CHAT, GATEWAY_APPS, HELLO, usage_rows


def cost(provider: str, model: str, usage: Usage | None) -> Decimal:
    target = Target(deployment_id="d", provider=provider, model=model)
    return request_cost(Candidate(target=target, prices=PriceOverride()), usage)


def test_openai_cached_and_reasoning_tokens():
    usage = Usage.from_openai(
        {
            "prompt_tokens": 1000,
            "completion_tokens": 500,
            "prompt_tokens_details": {"cached_tokens": 400},
            "completion_tokens_details": {"reasoning_tokens": 200},
        }
    )
    # gpt-4o-mini: 600 x 0.15 + 400 cached x 0.075 + 500 (reasoning included) x 0.60, per 1e6.
    assert cost("openai", "gpt-4o-mini", usage) == Decimal("0.00042")


def test_anthropic_cache_reads_and_writes():
    usage = usage_from_anthropic(
        {
            "input_tokens": 100,
            "cache_read_input_tokens": 1000,
            "cache_creation_input_tokens": 2000,
            "output_tokens": 300,
        }
    )
    # claude-3-5-sonnet: 100 x 3 + 1000 x 0.30 + 2000 x 3.75 + 300 x 15, per 1e6.
    assert cost("anthropic", "claude-3-5-sonnet-20241022", usage) == Decimal("0.0126")


def test_gemini_cached_content_and_thoughts():
    usage = usage_from(
        {
            "promptTokenCount": 1000,
            "cachedContentTokenCount": 200,
            "candidatesTokenCount": 100,
            "thoughtsTokenCount": 50,
        }
    )
    # gemini-2.0-flash: 800 x 0.10 + 200 cached x 0.025 + (100 + 50 thoughts) x 0.40, per 1e6.
    assert cost("gemini", "gemini-2.0-flash", usage) == Decimal("0.000145")


def test_bedrock_cache_reads_without_a_cache_price_cost_the_input_price():
    usage = usage_from_bedrock(
        {"inputTokens": 500, "outputTokens": 100, "cacheReadInputTokens": 1000}
    )
    # anthropic.claude-3-5-sonnet v2 on Bedrock: (500 + 1000) x 3 + 100 x 15, per 1e6.
    assert cost("bedrock", "anthropic.claude-3-5-sonnet-20241022-v2:0", usage) == Decimal("0.006")


def test_embeddings_cost_their_input():
    usage = Usage.from_openai({"prompt_tokens": 1234, "total_tokens": 1234})
    # text-embedding-3-small: 1234 x 0.02 per 1e6.
    assert cost("openai", "text-embedding-3-small", usage) == Decimal("0.00002468")


@pytest.fixture
def anthropic_upstream(make_deployment: Callable[..., Any]) -> Iterator[Callable[..., Any]]:
    app, _fake = fake_anthropic.make_app()
    server = BackgroundServer(app)
    server.start()

    def build(group: str, model: str) -> Any:
        return make_deployment(
            group, "anthropic", model, api_base=server.url, api_key=fake_anthropic.API_KEY
        )

    yield build
    server.stop()


@pytest.mark.parametrize("include_usage", [True, False])
@pytest.mark.django_db(transaction=True, available_apps=GATEWAY_APPS)
def test_a_stream_costs_what_the_same_call_costs_without_streaming(
    gateway_server, gateway_http, openai_upstream, anthropic_upstream, include_usage
):
    openai_upstream("gpt", "gpt-4o-mini")
    anthropic_upstream("claude", "claude-3-5-haiku-20241022")
    cached = [
        {
            "role": "system",
            "content": [
                {"type": "text", "text": "be brief", "cache_control": {"type": "ephemeral"}}
            ],
        },
        *HELLO,
    ]
    for model, messages in (("gpt", HELLO), ("claude", HELLO), ("claude", cached)):
        body: dict[str, Any] = {"model": model, "messages": messages}
        assert gateway_http.post(CHAT, json=body).status_code == 200
        stream_body = {**body, "stream": True}
        if include_usage:
            stream_body["stream_options"] = {"include_usage": True}
        assert gateway_http.post(CHAT, json=stream_body).status_code == 200
    rows = usage_rows(gateway_server, 6)
    pairs = [(rows[i], rows[i + 1]) for i in range(0, 6, 2)]
    for plain, streamed in pairs:
        assert not plain.stream and streamed.stream
        assert plain.cost > 0
        assert (streamed.prompt_tokens, streamed.completion_tokens, streamed.cost) == (
            plain.prompt_tokens,
            plain.completion_tokens,
            plain.cost,
        )
    assert pairs[2][0].cached_tokens > 0 and pairs[2][0].cache_creation_tokens > 0
