"""The generation cache: values live for their TTL on the gateway's clock, a clear starts a new
generation, and a load that began before a clear does not store its stale answer."""

from __future__ import annotations

import asyncio

from apps.core.cache import MISSING, GenerationCache


def _cache(max_size: int | None = None) -> GenerationCache[str, int | None]:
    return GenerationCache(
        ttl=lambda value: 60.0 if value is not None else 10.0,
        max_size=(lambda: max_size) if max_size is not None else None,
    )


async def test_a_value_lives_for_its_ttl(clock):
    cache = _cache()
    cache.put("a", 1, generation=cache.generation)
    clock.advance(59.9)
    assert cache.get("a") == 1
    clock.advance(0.1)
    assert cache.get("a") is MISSING


async def test_the_ttl_depends_on_the_value(clock):
    cache = _cache()
    cache.put("absent", None, generation=cache.generation)
    assert cache.get("absent") is None  # a cached "nothing", not a miss
    clock.advance(10)
    assert cache.get("absent") is MISSING


async def test_get_or_load_loads_once_while_fresh(clock):
    cache = _cache()
    loads = 0

    async def load() -> int:
        nonlocal loads
        loads += 1
        return 7

    assert await cache.get_or_load("k", load) == 7
    assert await cache.get_or_load("k", load) == 7
    assert loads == 1
    clock.advance(60)
    await cache.get_or_load("k", load)
    assert loads == 2


async def test_clear_empties_and_starts_a_new_generation():
    cache = _cache()
    cache.put("a", 1, generation=cache.generation)
    before = cache.generation
    cache.clear()
    assert cache.get("a") is MISSING
    assert cache.generation == before + 1


async def test_a_load_begun_before_a_clear_is_not_stored():
    cache = _cache()
    started, release = asyncio.Event(), asyncio.Event()

    async def slow_load() -> int:
        started.set()
        await release.wait()
        return 1  # read before the change below

    pending = asyncio.create_task(cache.get_or_load("k", slow_load))
    await started.wait()
    cache.clear()  # the data changed while the load was running
    release.set()
    assert await pending == 1  # the caller that asked before the change still gets an answer
    assert cache.get("k") is MISSING


async def test_a_full_cache_starts_over():
    cache = _cache(max_size=2)
    for n, key in enumerate("abc"):
        cache.put(key, n, generation=cache.generation)
    assert len(cache) == 1
    assert cache.get("c") == 2
