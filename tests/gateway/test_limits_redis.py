"""Limits shared through Redis, and what happens when Redis goes away mid-run."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import openai
import pytest
import redis
from django.test import override_settings

from apps.core import ratelimit
from apps.core import redis as shared_redis
from tests.fakes.tcp_relay import TcpRelay
from tests.gateway.helpers import E2E, HELLO

pytestmark = E2E

REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture(autouse=True)
def _fresh_counters() -> Iterator[None]:
    ratelimit.reset()
    yield
    ratelimit.reset()


def test_rpm_is_counted_in_redis(gateway_server, openai_upstream, openai_client, make_key):
    openai_upstream("gpt")
    key = make_key(rpm_limit=2)
    client = openai_client(key)
    with override_settings(REDIS_URL=REDIS_URL):
        client.chat.completions.create(model="gpt", messages=HELLO)
        client.chat.completions.create(model="gpt", messages=HELLO)
        ratelimit.local.STORE.clear()  # the in-process store plays no part
        with pytest.raises(openai.RateLimitError):
            client.chat.completions.create(model="gpt", messages=HELLO)
    from apps.keys.models import VirtualKey

    pk = VirtualKey.objects.get().pk
    found = redis.Redis.from_url(REDIS_URL).exists(shared_redis.name(f"rl:rpm:key:{pk}"))
    assert found == 1


def test_redis_going_away_mid_run_keeps_serving_with_one_warning(
    gateway_server, openai_upstream, openai_client, make_key, caplog
):
    openai_upstream("gpt")
    client = openai_client(make_key(rpm_limit=1000, tpm_limit=10**6, max_parallel_requests=5))
    relay = TcpRelay("127.0.0.1", 6379)
    relay.start()
    caplog.set_level(logging.WARNING, logger="apps.core.ratelimit")
    try:
        with override_settings(REDIS_URL=f"redis://127.0.0.1:{relay.port}/0"):
            for _ in range(3):
                client.chat.completions.create(model="gpt", messages=HELLO)
            relay.cut()
            for _ in range(10):
                raw = client.chat.completions.with_raw_response.create(model="gpt", messages=HELLO)
                assert raw.status_code == 200
                assert raw.headers["x-ratelimit-limit-requests"] == "1000"
    finally:
        relay.stop()
    warnings = [
        r
        for r in caplog.records
        if r.name == "apps.core.ratelimit" and r.levelno >= logging.WARNING
    ]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert "per process" in warnings[0].getMessage()
