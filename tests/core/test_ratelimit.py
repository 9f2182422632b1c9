"""The limiter's check-and-take, on Redis and in process: the same answers either way."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator

import pytest
from django.test import override_settings

from apps.core import ratelimit
from apps.core.ratelimit import Counter, Kind

REDIS_URL = "redis://127.0.0.1:6379/15"


@pytest.fixture(params=["redis", "local"])
def backend(request: pytest.FixtureRequest) -> Iterator[str]:
    ratelimit.reset()
    with override_settings(REDIS_URL=REDIS_URL if request.param == "redis" else None):
        yield request.param
    ratelimit.reset()


def unique(name: str) -> str:
    return f"{name}:{time.monotonic_ns()}"


def rpm(name: str, limit: int | None, window_s: float = 60.0) -> Counter:
    return Counter(name=name, kind=Kind.WINDOW, limit=limit, take=1, window_s=window_s)


async def test_window_lets_exactly_limit_through(backend):
    counter = rpm(unique("key:rpm"), 5)
    answers = [await ratelimit.acquire([counter]) for _ in range(7)]
    assert [a.allowed for a in answers] == [True] * 5 + [False] * 2
    assert answers[4].remaining(counter) == 0
    assert answers[0].remaining(counter) == 4
    refused = answers[5]
    assert refused.refused is counter
    assert 0 < refused.retry_after_s <= 61


async def test_window_frees_up_after_its_span(backend):
    counter = rpm(unique("key:rpm"), 2, window_s=0.6)
    assert (await ratelimit.acquire([counter])).allowed
    assert (await ratelimit.acquire([counter])).allowed
    refused = await ratelimit.acquire([counter])
    assert not refused.allowed
    assert refused.retry_after_s <= 0.62
    await asyncio.sleep(refused.retry_after_s + 0.05)
    assert (await ratelimit.acquire([counter])).allowed


async def test_all_or_nothing(backend):
    """A refusal by one counter takes nothing from the others."""
    loose = rpm(unique("key:rpm"), 10)
    tight = rpm(unique("team:rpm"), 1)
    assert (await ratelimit.acquire([loose, tight])).allowed
    refused = await ratelimit.acquire([loose, tight])
    assert refused.refused is tight
    ok = await ratelimit.acquire([loose])
    assert ok.remaining(loose) == 8


async def test_tokens_check_then_charge(backend):
    """tpm takes nothing up front; the tokens charged after the call count against the next."""
    tpm = Counter(name=unique("key:tpm"), kind=Kind.WINDOW, limit=100)
    first = await ratelimit.acquire([tpm])
    assert first.allowed and first.remaining(tpm) == 100
    values = await ratelimit.settle(first.lease, [(tpm, 60)])
    assert values[tpm.name] == 60
    second = await ratelimit.acquire([tpm])
    assert second.allowed and second.remaining(tpm) == 40
    await ratelimit.settle(second.lease, [(tpm, 50)])
    refused = await ratelimit.acquire([tpm])
    assert refused.refused is tpm and refused.remaining(tpm) == 0


async def test_parallel_slots_are_released(backend):
    slots = Counter(name=unique("key:parallel"), kind=Kind.PARALLEL, limit=2, ttl_s=60)
    a = await ratelimit.acquire([slots])
    b = await ratelimit.acquire([slots])
    assert a.allowed and b.allowed
    refused = await ratelimit.acquire([slots])
    assert refused.refused is slots and refused.retry_after_s > 0
    await ratelimit.settle(a.lease)
    c = await ratelimit.acquire([slots])
    assert c.allowed


async def test_parallel_slot_of_a_dead_holder_expires(backend):
    slots = Counter(name=unique("key:parallel"), kind=Kind.PARALLEL, limit=1, ttl_s=0.3)
    assert (await ratelimit.acquire([slots])).allowed  # never settled: its holder "crashed"
    assert not (await ratelimit.acquire([slots])).allowed
    await asyncio.sleep(0.4)
    assert (await ratelimit.acquire([slots])).allowed


async def test_total_starts_at_seed_and_refuses_at_limit(backend):
    spend = Counter(name=unique("key:spend"), kind=Kind.TOTAL, limit=1000, seed=900)
    first = await ratelimit.acquire([spend])
    assert first.allowed and first.remaining(spend) == 100
    values = await ratelimit.settle(first.lease, [(spend, 100)])
    assert values[spend.name] == 1000
    refused = await ratelimit.acquire([spend])
    assert refused.refused is spend and refused.used == (1000,)


async def test_no_limit_counts_but_never_refuses(backend):
    counter = rpm(unique("key:rpm"), None)
    for _ in range(3):
        outcome = await ratelimit.acquire([counter])
        assert outcome.allowed and outcome.remaining(counter) is None
    assert outcome.used == (3,)


async def test_refusal_reports_used_of_every_counter(backend):
    a = rpm(unique("a"), 5)
    b = rpm(unique("b"), 0)
    c = rpm(unique("c"), 5)
    refused = await ratelimit.acquire([a, b, c])
    assert refused.refused is b
    assert len(refused.used) == 3


async def test_concurrent_acquires_never_exceed_limit(backend):
    counter = rpm(unique("key:rpm"), 20)
    answers = await asyncio.gather(*(ratelimit.acquire([counter]) for _ in range(50)))
    assert sum(a.allowed for a in answers) == 20


async def test_redis_shared_between_event_loops():
    """Two event loops (two clients, as two instances have) count on the same window."""
    ratelimit.reset()
    counter = rpm(unique("key:rpm"), 3)
    with override_settings(REDIS_URL=REDIS_URL):

        def burst() -> list[bool]:
            async def go() -> list[bool]:
                return [(await ratelimit.acquire([counter])).allowed for _ in range(2)]

            return asyncio.run(go())

        results = await asyncio.gather(asyncio.to_thread(burst), asyncio.to_thread(burst))
    assert sorted(results[0] + results[1]) == [False, True, True, True]


async def test_unreachable_redis_counts_in_process_with_one_warning(caplog):
    ratelimit.reset()
    caplog.set_level(logging.WARNING, logger="apps.core.ratelimit")
    counter = rpm(unique("key:rpm"), 3)
    with override_settings(REDIS_URL="redis://127.0.0.1:1/0"):
        answers = [await ratelimit.acquire([counter]) for _ in range(4)]
        await ratelimit.settle(answers[0].lease, [(counter, 0)])
    assert [a.allowed for a in answers] == [True, True, True, False]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "per process" in warnings[0].getMessage()
    ratelimit.reset()


async def test_script_unknown_to_the_server_is_loaded(backend):
    """A Redis restart forgets loaded scripts: the digest misses once, the source is sent."""
    if backend != "redis":
        pytest.skip("Redis only")
    import redis.asyncio as aioredis

    from apps.core.ratelimit.lua import Script

    script = Script(f"-- {time.monotonic_ns()}\nreturn ARGV[1]")
    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        assert await script.run(client, [], ["x"]) == b"x"
        assert await script.run(client, [], ["y"]) == b"y"
    finally:
        await client.aclose()


async def test_total_never_counts_below_its_seed(backend):
    """Spend recorded elsewhere (a larger seed after a reload) is taken in; a smaller seed
    never lowers what was counted."""
    name = unique("key:spend")
    first = Counter(name=name, kind=Kind.TOTAL, limit=1000, seed=100)
    await ratelimit.settle(None, [(first, 50)])
    assert (await ratelimit.acquire([first])).used == (150,)
    reloaded = Counter(name=name, kind=Kind.TOTAL, limit=1000, seed=400)
    assert (await ratelimit.acquire([reloaded])).used == (400,)
    assert (await ratelimit.settle(None, [(reloaded, 10)]))[name] == 410
    stale = Counter(name=name, kind=Kind.TOTAL, limit=1000, seed=0)
    assert (await ratelimit.acquire([stale])).used == (410,)


async def test_concurrent_calls_share_one_pipeline(backend, monkeypatch):
    """Acquires issued in the same loop turn reach Redis in one round trip."""
    if backend != "redis":
        pytest.skip("Redis only")
    from apps.core.ratelimit.lua import ACQUIRE

    flushes: list[int] = []
    original = ACQUIRE._flush

    async def counted(client, items):
        flushes.append(len(items))
        await original(client, items)

    monkeypatch.setattr(ACQUIRE, "_flush", counted)
    counter = rpm(unique("key:rpm"), 5)
    answers = await asyncio.gather(*(ratelimit.acquire([counter]) for _ in range(8)))
    assert sum(a.allowed for a in answers) == 5
    assert flushes == [8]
