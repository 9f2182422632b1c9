"""Short-lived upstream tokens: fetched once per credentials, shared by concurrent requests,
and fetched again a minute before they expire (on the controlled clock)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from apps.gateway import tokens
from apps.providers.registry import get_provider
from apps.providers.schemas import Target

TARGET = Target(
    deployment_id="d",
    provider="azure",
    model="m",
    params={"tenant_id": "t", "client_id": "c", "client_secret": "s"},
)


@pytest.fixture
def fetches(monkeypatch: pytest.MonkeyPatch, clock: Any) -> list[str]:
    """Token fetches, each answering a token valid for an hour from the clock's now."""
    tokens.clear()
    issued: list[str] = []

    async def fetch(provider: Any, target: Target) -> tuple[str, float]:
        await asyncio.sleep(0)
        issued.append(f"token-{len(issued) + 1}")
        return issued[-1], clock.time() + 3600

    monkeypatch.setattr(tokens, "_fetch", fetch)
    yield issued
    tokens.clear()


async def test_a_token_is_fetched_once_and_reused(fetches: list[str], clock: Any) -> None:
    provider = get_provider("azure")
    first = await tokens.with_token(provider, TARGET)
    clock.advance(3600 - 61)
    again = await tokens.with_token(provider, TARGET)
    assert first.access_token == again.access_token == "token-1"
    assert fetches == ["token-1"]


async def test_a_token_is_renewed_a_minute_before_it_expires(
    fetches: list[str], clock: Any
) -> None:
    provider = get_provider("azure")
    await tokens.with_token(provider, TARGET)
    clock.advance(3600 - 59)
    renewed = await tokens.with_token(provider, TARGET)
    assert renewed.access_token == "token-2"


async def test_concurrent_requests_share_one_fetch(fetches: list[str]) -> None:
    provider = get_provider("azure")
    results = await asyncio.gather(*(tokens.with_token(provider, TARGET) for _ in range(5)))
    assert {r.access_token for r in results} == {"token-1"}
    assert fetches == ["token-1"]


async def test_a_provider_without_token_auth_is_left_alone(fetches: list[str]) -> None:
    plain = Target(deployment_id="d", provider="openai", model="m", api_key="k")
    assert await tokens.with_token(get_provider("openai"), plain) is plain
    assert fetches == []
