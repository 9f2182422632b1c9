"""The Redis side of the limiter: two Lua scripts, run with EVALSHA (EVAL once after a Redis
restart forgot them). Time comes from the Redis server (``TIME``), so every instance counts on
the same clock.

ACQUIRE  KEYS: one per counter.
         ARGV: lease_id, buckets, then per counter: kind, limit (-1: none), take, window_ms,
         ttl_ms, seed.
         Returns {allowed (1|0), index of the refusing counter (0-based, -1), retry_after_ms,
         used per counter...}.
SETTLE   KEYS: one per counter.
         ARGV: lease_id, buckets, then per counter: kind, amount, window_ms, ttl_ms, seed.
         Returns the new value per counter (0 for parallel ones, whose slot is released).
"""

from __future__ import annotations

import asyncio
import hashlib
import weakref
from collections.abc import Sequence
from typing import Any

_COMMON = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = ARGV[1]
local buckets = tonumber(ARGV[2])

-- A window: bucket fields {index -> amount}, plus 's' (their sum) and 'o' (no live bucket
-- is older). Buckets that left the window are subtracted as time moves on, so a check reads
-- two fields, not every bucket. Returns sum, width, current index, oldest live index, and
-- whether the window holds nothing yet.
local function window(key, window_ms)
  local width = math.max(1, math.floor(window_ms / buckets))
  local current = math.floor(now / width)
  local oldest = current - buckets
  local head = redis.call('HMGET', key, 's', 'o')
  local first = tonumber(head[2])
  if first == nil then return 0, width, current, oldest, true end
  local sum = tonumber(head[1]) or 0
  if first < oldest then
    if oldest - first > buckets then
      redis.call('DEL', key)
      return 0, width, current, oldest, true
    end
    for idx = first, oldest - 1 do
      local v = redis.call('HGET', key, idx)
      if v then
        sum = sum - tonumber(v)
        redis.call('HDEL', key, idx)
      end
    end
    redis.call('HSET', key, 's', sum, 'o', oldest)
    first = oldest
  end
  return sum, width, current, first, false
end

-- Add amount to the current bucket of a window.
local function window_add(key, amount, width, current, oldest, fresh, window_ms)
  redis.call('HINCRBY', key, current, amount)
  redis.call('HINCRBY', key, 's', amount)
  if fresh then redis.call('HSET', key, 'o', oldest) end
  redis.call('PEXPIRE', key, window_ms + 2 * width)
end
"""

_ACQUIRE_SRC = (
    _COMMON
    + """
local n = #KEYS
local used = {}
local state = {}
for i = 1, n do
  local base = 2 + (i - 1) * 6
  local kind = tonumber(ARGV[base + 1])
  local limit = tonumber(ARGV[base + 2])
  local take = tonumber(ARGV[base + 3])
  local window_ms = tonumber(ARGV[base + 4])
  local ttl_ms = tonumber(ARGV[base + 5])
  local seed = tonumber(ARGV[base + 6])
  local key = KEYS[i]
  if kind == 1 then
    local sum, width, current, first, fresh = window(key, window_ms)
    state[i] = {kind, take, width, current, window_ms, first, fresh}
    used[i] = sum
    if limit >= 0 and (sum + take > limit or sum >= limit) then
      -- When enough of the oldest buckets leave the window for this take to fit.
      local retry = window_ms
      local left = sum
      for idx = first, current do
        local v = redis.call('HGET', key, idx)
        if v then
          left = left - tonumber(v)
          if left + take <= limit and left < limit then
            retry = (idx + buckets + 1) * width - now
            break
          end
        end
      end
      return {0, i - 1, math.max(retry, 1), unpack(used)}
    end
  elseif kind == 2 then
    redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
    local count = redis.call('ZCARD', key)
    state[i] = {kind, ttl_ms}
    used[i] = count
    if limit >= 0 and count + 1 > limit then
      local first = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
      local retry = 1000
      if first[2] then retry = math.min(1000, tonumber(first[2]) - now) end
      return {0, i - 1, math.max(retry, 1), unpack(used)}
    end
  else
    local value = tonumber(redis.call('GET', key) or seed)
    if value < seed then value = seed end
    used[i] = value
    state[i] = {kind}
    if limit >= 0 and value >= limit then
      return {0, i - 1, 0, unpack(used)}
    end
  end
end
for i = 1, n do
  local s = state[i]
  local key = KEYS[i]
  if s[1] == 1 then
    if s[2] > 0 then
      window_add(key, s[2], s[3], s[4], s[6], s[7], s[5])
      used[i] = used[i] + s[2]
    end
  elseif s[1] == 2 then
    redis.call('ZADD', key, now + s[2], lease)
    redis.call('PEXPIRE', key, s[2])
    used[i] = used[i] + 1
  end
end
return {1, -1, 0, unpack(used)}
"""
)

_SETTLE_SRC = (
    _COMMON
    + """
local out = {}
for i = 1, #KEYS do
  local base = 2 + (i - 1) * 5
  local kind = tonumber(ARGV[base + 1])
  local amount = tonumber(ARGV[base + 2])
  local window_ms = tonumber(ARGV[base + 3])
  local ttl_ms = tonumber(ARGV[base + 4])
  local seed = ARGV[base + 5]
  local key = KEYS[i]
  if kind == 1 then
    local sum, width, current, first, fresh = window(key, window_ms)
    if amount > 0 then window_add(key, amount, width, current, first, fresh, window_ms) end
    out[i] = sum + amount
  elseif kind == 2 then
    redis.call('ZREM', key, lease)
    out[i] = 0
  else
    local value = tonumber(redis.call('GET', key) or seed)
    if value < tonumber(seed) then value = tonumber(seed) end
    value = value + amount
    if ttl_ms > 0 then
      redis.call('SET', key, string.format('%.0f', value), 'PX', ttl_ms)
    else
      redis.call('SET', key, string.format('%.0f', value))
    end
    out[i] = value
  end
end
return out
"""
)


class _Batch:
    __slots__ = ("items", "scheduled")

    def __init__(self) -> None:
        self.items: list[tuple[Sequence[str], Sequence[object], asyncio.Future[Any]]] = []
        self.scheduled = False


class Script:
    """A Lua script run by digest, loaded again when the server does not know it.

    Calls made in the same event-loop turn (concurrent requests) go to Redis together in one
    pipeline: redis-py spends most of a round trip's CPU on the call itself, so under load
    this divides the limiter's cost several times, and a lone call waits one loop turn.
    """

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest()
        self._batches: weakref.WeakKeyDictionary[Any, _Batch] = weakref.WeakKeyDictionary()

    async def run(self, client: Any, keys: Sequence[str], args: Sequence[object]) -> Any:
        loop = asyncio.get_running_loop()
        batch = self._batches.get(client)
        if batch is None:
            batch = self._batches[client] = _Batch()
        future: asyncio.Future[Any] = loop.create_future()
        batch.items.append((keys, args, future))
        if not batch.scheduled:
            batch.scheduled = True
            loop.call_soon(self._start_flush, loop, client, batch)
        return await future

    def _start_flush(self, loop: asyncio.AbstractEventLoop, client: Any, batch: _Batch) -> None:
        items, batch.items, batch.scheduled = batch.items, [], False
        task = loop.create_task(self._flush(client, items))
        _flushing.add(task)
        task.add_done_callback(_flushing.discard)

    async def _flush(
        self,
        client: Any,
        items: list[tuple[Sequence[str], Sequence[object], asyncio.Future[Any]]],
    ) -> None:
        try:
            if len(items) == 1:
                keys, args, _future = items[0]
                results: list[Any] = [await self._one(client, keys, args)]
            else:
                results = await self._many(client, items)
        except BaseException as exc:  # every caller learns of the failure (Redis down...)
            for _keys, _args, future in items:
                if not future.done():
                    future.set_exception(exc if isinstance(exc, Exception) else RuntimeError())
            if not isinstance(exc, Exception):
                raise
            return
        for (_keys, _args, future), result in zip(items, results, strict=True):
            if future.done():
                continue  # its request went away meanwhile
            if isinstance(result, Exception):
                future.set_exception(result)
            else:
                future.set_result(result)

    async def _one(self, client: Any, keys: Sequence[str], args: Sequence[object]) -> Any:
        from redis.exceptions import NoScriptError

        try:
            return await client.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            return await client.eval(self.source, len(keys), *keys, *args)

    async def _many(
        self,
        client: Any,
        items: list[tuple[Sequence[str], Sequence[object], asyncio.Future[Any]]],
    ) -> list[Any]:
        from redis.exceptions import NoScriptError

        pipe = client.pipeline(transaction=False)
        for keys, args, _future in items:
            pipe.evalsha(self.sha, len(keys), *keys, *args)
        results: list[Any] = await pipe.execute(raise_on_error=False)
        if any(isinstance(r, NoScriptError) for r in results):
            await client.script_load(self.source)
            pipe = client.pipeline(transaction=False)
            for keys, args, _future in items:
                pipe.evalsha(self.sha, len(keys), *keys, *args)
            results = await pipe.execute(raise_on_error=False)
        return results


_flushing: set[asyncio.Task[None]] = set()

ACQUIRE = Script(_ACQUIRE_SRC)
SETTLE = Script(_SETTLE_SRC)
