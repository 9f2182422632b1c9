"""The transport's tests run on asyncio's own event loop and on uvloop, which serves the
gateway: their transports differ (TLS upgrade, flow control, closing). Each test gets a fresh
session, so settings and the environment's proxies are read anew."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping

import pytest
import uvloop

from apps.gateway import upstream


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]]:
    return {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}


@pytest.fixture(autouse=True)
async def fresh_session(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[None]:
    for name in ("http_proxy", "https_proxy", "no_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    await upstream.close_pool()
    yield
    await upstream.close_pool()
