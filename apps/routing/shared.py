"""The router's state shared by every instance through Redis (``REDIS_URL``).

- Per-minute request counters of deployments with an ``rpm``/``tpm`` limit: one Lua script
  checks the ordered candidates and takes a request from the first with room, atomically, in
  one round trip (the only Redis traffic before an upstream call, and only when the preferred
  deployment has a limit).
- Failures and cooldowns: a failure is counted by a Lua script after the failed attempt (off
  the request's path); the script puts the deployment in the ``cooldowns`` hash once it failed
  more than ``allowed_fails`` times this minute.
- Every second each instance publishes its figures (requests in flight, latency averages,
  this minute's requests and tokens) and reads the others' and the cooldowns in one pipeline,
  so strategies and cooldown checks read memory, never Redis.

Redis going away degrades to this process's own figures with a warning, never a failed
request; after a failure Redis is left alone for a few seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import time
import weakref
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import orjson

from apps.core import redis as shared_redis
from apps.routing import state

if TYPE_CHECKING:
    import redis.asyncio as aioredis

    from apps.routing.selectors import Candidate

logger = logging.getLogger(__name__)

SYNC_INTERVAL_S = 1.0
_BACKOFF_S = 5.0
_WARN_EVERY_S = 30.0
_STALE_S = 10.0

# KEYS: per candidate its rpm counter and tpm counter of this minute. ARGV: estimated tokens,
# then per candidate its rpm and tpm limit (-1: none). Returns the 1-based index taken, or 0.
_TAKE = """
local est = tonumber(ARGV[1])
for i = 1, #KEYS / 2 do
  local rpm = tonumber(ARGV[2 * i])
  local tpm = tonumber(ARGV[2 * i + 1])
  local used = tonumber(redis.call('GET', KEYS[2 * i - 1]) or '0')
  local tokens = tonumber(redis.call('GET', KEYS[2 * i]) or '0')
  if (rpm < 0 or used < rpm) and (tpm < 0 or tokens + est <= tpm) then
    redis.call('INCR', KEYS[2 * i - 1])
    redis.call('EXPIRE', KEYS[2 * i - 1], 120)
    return i
  end
end
return 0
"""

# KEYS: the failure counter of this minute, the cooldowns hash. ARGV: allowed_fails,
# cooldown end (UNIX time), deployment id, 1 if the deployment may be cooled down.
_FAIL = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], 120) end
if n > tonumber(ARGV[1]) and ARGV[4] == '1' then
  redis.call('HSET', KEYS[2], ARGV[3], ARGV[2])
  redis.call('EXPIRE', KEYS[2], 86400)
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
"""

_instance = secrets.token_hex(6)


def _new_instance() -> None:
    global _instance
    _instance = secrets.token_hex(6)


os.register_at_fork(after_in_child=_new_instance)


class Shared:
    """One event loop's link to the shared state."""

    def __init__(self, client: aioredis.Redis) -> None:
        self.client = client
        self.down_until = 0.0
        self.warned_at = 0.0
        self.pending_tokens: dict[str, int] = {}
        self.tasks: set[asyncio.Task[Any]] = set()
        self.take_script = client.register_script(_TAKE)
        self.fail_script = client.register_script(_FAIL)
        self.sync_task = asyncio.get_running_loop().create_task(self._sync_loop())

    @property
    def usable(self) -> bool:
        return time.monotonic() >= self.down_until

    def failed(self, exc: BaseException) -> None:
        now = time.monotonic()
        self.down_until = now + _BACKOFF_S
        if now - self.warned_at >= _WARN_EVERY_S or not self.warned_at:
            self.warned_at = now
            logger.warning(
                "Redis unavailable for routing state (%s): using this instance's own counters",
                type(exc).__name__,
            )

    async def take(self, candidates: Sequence[Candidate], tokens: int, minute: int) -> int | None:
        """Index of the first candidate with room this minute (its request taken), -1 when
        none has room, None when Redis cannot answer."""
        if not self.usable:
            return None
        keys: list[str] = []
        args: list[Any] = [tokens]
        for c in candidates:
            base = shared_redis.name(f"rt:dep:{c.target.deployment_id}:{minute}")
            keys += [base + ":r", base + ":t"]
            args += [c.rpm if c.rpm is not None else -1, c.tpm if c.tpm is not None else -1]
        try:
            found = int(await self.take_script(keys=keys, args=args))
        except Exception as exc:
            self.failed(exc)
            return None
        return found - 1

    def add_tokens(self, deployment_id: str, tokens: int) -> None:
        """Counted against the deployment's tpm at the next sync (within a second)."""
        self.pending_tokens[deployment_id] = self.pending_tokens.get(deployment_id, 0) + tokens

    def note_failure(
        self, deployment_id: str, allowed_fails: int, until: float, may_cool: bool
    ) -> None:
        """Count a failure for every instance, off the request's path."""
        if not self.usable:
            return
        task = asyncio.get_running_loop().create_task(
            self._note_failure(deployment_id, allowed_fails, until, may_cool)
        )
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _note_failure(
        self, deployment_id: str, allowed_fails: int, until: float, may_cool: bool
    ) -> None:
        minute = state.current_minute()
        keys = [
            shared_redis.name(f"rt:fails:{deployment_id}:{minute}"),
            shared_redis.name("rt:cooldowns"),
        ]
        args: list[int | str] = [
            allowed_fails,
            repr(until),
            deployment_id,
            "1" if may_cool else "0",
        ]
        try:
            if int(await self.fail_script(keys=keys, args=args)):
                state.cool_down(deployment_id, until)
        except Exception as exc:
            self.failed(exc)

    def _snapshot(self, now: float) -> bytes:
        minute = state.current_minute(now)
        figures = {}
        for dep, found in state._stats.items():
            found.roll(minute)
            figures[dep] = [
                found.in_flight,
                found.latency_s,
                found.ttft_s,
                found.requests,
                found.tokens,
            ]
        return orjson.dumps({"t": now, "m": minute, "d": figures})

    async def sync(self) -> None:
        """Publish this instance's figures, read the others' and the cooldowns."""
        now = time.time()
        minute = state.current_minute(now)
        load = shared_redis.name("rt:load")
        cooldowns = shared_redis.name("rt:cooldowns")
        tokens, self.pending_tokens = self.pending_tokens, {}
        pipe = self.client.pipeline(transaction=False)
        for dep, count in tokens.items():
            key = shared_redis.name(f"rt:dep:{dep}:{minute}:t")
            pipe.incrby(key, count)
            pipe.expire(key, 120)
        pipe.hset(load, _instance, self._snapshot(now))
        pipe.expire(load, 3600)
        pipe.hgetall(load)
        pipe.hgetall(cooldowns)
        results = await pipe.execute()
        self._merge_load(results[-2], now, minute)
        self._merge_cooldowns(results[-1], now)

    def _merge_load(self, raw: dict[bytes, bytes], now: float, minute: int) -> None:
        totals: dict[str, list[Any]] = {}
        stale = []
        for field, value in raw.items():
            name = field.decode()
            if name == _instance:
                continue
            data = orjson.loads(value)
            if now - float(data.get("t", 0)) > _STALE_S:
                stale.append(field)
                continue
            same_minute = data.get("m") == minute
            for dep, (flight, lat, ttft, requests, tokens) in data.get("d", {}).items():
                entry = totals.setdefault(dep, [0, [], [], 0, 0])
                entry[0] += flight
                if lat is not None:
                    entry[1].append(lat)
                if ttft is not None:
                    entry[2].append(ttft)
                if same_minute:
                    entry[3] += requests
                    entry[4] += tokens
        for dep, found in state._stats.items():
            if dep not in totals:
                found.remote_in_flight = found.remote_requests = found.remote_tokens = 0
                found.remote_latency_s = found.remote_ttft_s = None
        for dep, (flight, lats, ttfts, requests, tokens) in totals.items():
            found = state.stats(dep)
            found.remote_in_flight = flight
            found.remote_minute = minute
            found.remote_requests = requests
            found.remote_tokens = tokens
            found.remote_latency_s = sum(lats) / len(lats) if lats else None
            found.remote_ttft_s = sum(ttfts) / len(ttfts) if ttfts else None
        if stale:
            self._forget(load_key(), stale)

    def _merge_cooldowns(self, raw: dict[bytes, bytes], now: float) -> None:
        over = []
        for field, value in raw.items():
            until = float(value)
            if until > now:
                state.cool_down(field.decode(), until)
            elif until < now - _STALE_S:
                over.append(field)
        if over:
            self._forget(shared_redis.name("rt:cooldowns"), over)

    def _forget(self, key: str, fields: list[bytes]) -> None:
        """Remove hash fields nobody needs any more, off the sync's path."""

        async def delete() -> None:
            with contextlib.suppress(Exception):
                await self.client.hdel(key, *fields)

        task = asyncio.get_running_loop().create_task(delete())
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _sync_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while _links.get(loop) is self:
            if self.usable:
                try:
                    await self.sync()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    self.failed(exc)
            await asyncio.sleep(SYNC_INTERVAL_S)

    async def close(self) -> None:
        self.sync_task.cancel()
        for task in [self.sync_task, *self.tasks]:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


def load_key() -> str:
    return shared_redis.name("rt:load")


_links: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Shared] = weakref.WeakKeyDictionary()


def link() -> Shared | None:
    """This event loop's link, started on first use; None without ``REDIS_URL``."""
    loop = asyncio.get_running_loop()
    found = _links.get(loop)
    if found is None:
        client = shared_redis.client()
        if client is None:
            return None
        found = _links[loop] = Shared(client)
    return found


def forget() -> None:
    """Drop every loop's link (tests, after changing ``REDIS_URL``); their sync loops end."""
    _links.clear()


async def close() -> None:
    found = _links.pop(asyncio.get_running_loop(), None)
    if found is not None:
        await found.close()
