"""Redis going away degrades the shared routing state to this instance's own figures, with a
warning, never a failed request."""

from __future__ import annotations

import logging

from tests.fakes.server import free_port
from tests.gateway.helpers import CHAT, E2E, HELLO, wait_until

pytestmark = E2E


def test_an_unreachable_redis_degrades_to_local_counters(
    gateway_http, openai_upstream, fake_openai, settings, caplog
):
    from apps.core import redis as shared_redis

    caplog.set_level(logging.WARNING, logger="apps.routing.shared")
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    try:
        openai_upstream("gpt", "gpt-4o-mini", rpm=2)
        statuses = [
            gateway_http.post(CHAT, json={"model": "gpt", "messages": HELLO}).status_code
            for _ in range(3)
        ]
        assert statuses == [200, 200, 429]
        wait_until(lambda: "Redis unavailable for routing state" in caplog.text, what="the warning")
        assert caplog.text.count("Redis unavailable for routing state") == 1
    finally:
        shared_redis._clients.clear()
