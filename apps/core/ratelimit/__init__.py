"""Rate limits, parallel-request limits and budget counters: check-and-take in one round trip.

The request path builds a list of :class:`Counter` for everything that applies to a call (a
key's rpm, its team's tpm, a user's parallel limit, a team's budget, a deployment's rpm added
by routing...) and asks :func:`acquire` for all of them at once::

    outcome = await ratelimit.acquire(counters)
    if not outcome.allowed:
        ...  # outcome.refused names the counter, outcome.retry_after_s says when to come back
    try:
        ...  # the call
    finally:
        await ratelimit.settle(outcome.lease, charges=[(tpm_counter, tokens), (budget, cost)])

Either every counter takes its share or none does. With ``REDIS_URL`` set the check runs as one
Lua script (one round trip, atomic across every instance and worker); without it, or while
Redis is unreachable, the same semantics run in this process (:mod:`.local`). Losing Redis never
fails a request: the gateway logs ONE warning, counts in process, and tries Redis again every
``RETRY_S`` seconds; it logs once more when Redis is back.

Counter kinds:

- :attr:`Kind.WINDOW` — a sliding window of ``window_s`` seconds (rpm, tpm), kept as 60
  buckets plus the current one, so an amount counts for at least ``window_s`` and at most
  ``window_s * 61/60``: never more than ``limit`` in any span of ``window_s``. ``take`` is
  added at acquire time (1 for a request, 0 for tpm, which only checks); ``settle`` adds more
  (the tokens a call really used). A take of 0 passes while the window holds less than
  ``limit``; a take of n passes when ``used + n <= limit``.
- :attr:`Kind.PARALLEL` — requests in flight. Acquire holds one slot under the outcome's lease
  id until :func:`settle` releases it; a slot whose holder died (worker killed mid-call)
  expires after ``ttl_s``.
- :attr:`Kind.TOTAL` — a running total checked against ``limit`` (spend in integer units,
  e.g. nano-dollars). Acquire only checks ``used < limit``; ``settle`` adds to it. The total
  never counts below ``seed`` (the total the database knows: a counter Redis lost starts
  there, and spend recorded elsewhere is taken in when the caller's limits are reloaded),
  and it expires ``ttl_s`` after its last change (0: never).

``limit`` None never refuses (the counter is still counted, e.g. for response headers or a
soft threshold).
"""

from __future__ import annotations

import asyncio
import enum
import logging
import secrets
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from apps.core import redis as shared_redis
from apps.core.ratelimit import local
from apps.core.ratelimit.lua import ACQUIRE, SETTLE

logger = logging.getLogger(__name__)

RETRY_S = 5.0
BUCKETS = 60
_background: set[asyncio.Task[dict[str, int]]] = set()


class Kind(enum.IntEnum):
    WINDOW = 1
    PARALLEL = 2
    TOTAL = 3


@dataclass(frozen=True, slots=True)
class Counter:
    """One limit to check. ``name`` identifies the counter across instances (``key:42:rpm``);
    ``label`` names it to the client in a refusal (``key``, ``team``, ...)."""

    name: str
    kind: Kind
    limit: int | None
    take: int = 0
    window_s: float = 60.0
    ttl_s: float = 0.0
    seed: int = 0
    label: str = ""


@dataclass(slots=True)
class Lease:
    """What a successful acquire holds: the parallel slots to release, and where."""

    id: str
    counters: tuple[Counter, ...]
    remote: bool


@dataclass(slots=True)
class Outcome:
    allowed: bool
    counters: tuple[Counter, ...]
    # Per counter, the amount used after this acquire (window: sum in the window; parallel:
    # slots in use; total: the running total).
    used: tuple[int, ...]
    refused: Counter | None = None
    retry_after_s: float = 0.0
    lease: Lease | None = field(default=None)

    def remaining(self, counter: Counter) -> int | None:
        """``limit - used`` for ``counter`` (never negative); None when it has no limit."""
        if counter.limit is None:
            return None
        for index, current in enumerate(self.counters):
            if current is counter:
                return max(0, counter.limit - self.used[index])
        return None


class _Health:
    """Whether Redis is usable now; warns once per outage."""

    down_until = 0.0
    warned = False

    @classmethod
    def failed(cls, exc: BaseException) -> None:
        cls.down_until = time.monotonic() + RETRY_S
        if not cls.warned:
            cls.warned = True
            logger.warning(
                "Redis is unreachable (%s): rate limits and budgets are counted per process "
                "until it is back",
                type(exc).__name__,
            )

    @classmethod
    def ok(cls) -> None:
        if cls.warned:
            cls.warned = False
            logger.info("Redis is reachable again: rate limits are shared across instances")


def shared() -> bool:
    """Whether counters are shared through Redis right now (else counted in this process)."""
    return _redis() is not None


def raise_local_totals(values: dict[str, int]) -> None:
    """Raise this process's TOTAL counters to at least ``values``: without Redis, the spend
    the database has recorded from every instance, so each sees the others' within a sync."""
    local.STORE.raise_totals(values)


def reset() -> None:
    """Forget every in-process counter and the Redis health state (tests)."""
    local.STORE.clear()
    _Health.down_until = 0.0
    _Health.warned = False


def _redis() -> object | None:
    client = shared_redis.client()
    if client is None or time.monotonic() < _Health.down_until:
        return None
    return client


def _acquire_args(lease_id: str, counters: Sequence[Counter]) -> tuple[list[str], list[object]]:
    keys = [shared_redis.name("rl:" + c.name) for c in counters]
    args: list[object] = [lease_id, BUCKETS]
    for c in counters:
        args += [
            int(c.kind),
            -1 if c.limit is None else c.limit,
            c.take,
            max(1, int(c.window_s * 1000)),
            int(c.ttl_s * 1000),
            c.seed,
        ]
    return keys, args


async def acquire(counters: Sequence[Counter]) -> Outcome:
    """Check every counter and, if all pass, take from each (atomically). Never raises for an
    unreachable Redis: falls back to counting in this process."""
    counters = tuple(counters)
    lease_id = secrets.token_hex(8)
    if not counters:
        return Outcome(allowed=True, counters=counters, used=(), lease=None)
    client = _redis()
    if client is not None:
        keys, args = _acquire_args(lease_id, counters)
        try:
            reply = await ACQUIRE.run(client, keys, args)
        except asyncio.CancelledError:
            # The script may have run: give back any slot it took, in the background.
            held = tuple(c for c in counters if c.kind is Kind.PARALLEL)
            if held:
                task = asyncio.get_running_loop().create_task(
                    settle(Lease(id=lease_id, counters=held, remote=True))
                )
                _background.add(task)
                task.add_done_callback(_background.discard)
            raise
        except Exception as exc:
            _Health.failed(exc)
        else:
            _Health.ok()
            return _outcome(lease_id, counters, reply, remote=True)
    allowed, refused_index, retry_s, used = local.STORE.acquire(lease_id, counters, BUCKETS)
    return _build(lease_id, counters, allowed, refused_index, retry_s, used, remote=False)


def _outcome(
    lease_id: str, counters: tuple[Counter, ...], reply: list[object], *, remote: bool
) -> Outcome:
    allowed = int(reply[0]) == 1  # type: ignore[call-overload]
    refused_index = int(reply[1])  # type: ignore[call-overload]
    retry_s = int(reply[2]) / 1000  # type: ignore[call-overload]
    used = tuple(int(v) for v in reply[3:])  # type: ignore[call-overload]
    used += (0,) * (len(counters) - len(used))  # a refusal stops counting at the refuser
    return _build(lease_id, counters, allowed, refused_index, retry_s, used, remote=remote)


def _build(
    lease_id: str,
    counters: tuple[Counter, ...],
    allowed: bool,
    refused_index: int,
    retry_s: float,
    used: tuple[int, ...],
    *,
    remote: bool,
) -> Outcome:
    if not allowed:
        return Outcome(
            allowed=False,
            counters=counters,
            used=used,
            refused=counters[refused_index],
            retry_after_s=retry_s,
        )
    held = tuple(c for c in counters if c.kind is Kind.PARALLEL)
    lease = Lease(id=lease_id, counters=held, remote=remote)
    return Outcome(allowed=True, counters=counters, used=used, lease=lease)


async def settle(
    lease: Lease | None, charges: Iterable[tuple[Counter, int]] = ()
) -> dict[str, int]:
    """Release ``lease``'s parallel slots and add each charge (tokens to a window, spend to a
    total), in one round trip. Returns the new value of each charged counter by name (a
    window's current sum, a total's running total). Never raises."""
    charged = [(c, amount) for c, amount in charges if amount > 0]
    held = lease.counters if lease is not None else ()
    if not charged and not held:
        return {}
    lease_id = lease.id if lease is not None else ""
    counters = [*held, *(c for c, _ in charged)]
    amounts = [0] * len(held) + [amount for _, amount in charged]
    client = _redis()
    remote_lease = lease is not None and lease.remote
    if client is not None:
        keys = [shared_redis.name("rl:" + c.name) for c in counters]
        args: list[object] = [lease_id, BUCKETS]
        for c, amount in zip(counters, amounts, strict=True):
            args += [
                int(c.kind),
                amount,
                max(1, int(c.window_s * 1000)),
                int(c.ttl_s * 1000),
                c.seed,
            ]
        try:
            reply = await SETTLE.run(client, keys, args)
        except Exception as exc:
            _Health.failed(exc)
        else:
            _Health.ok()
            if not remote_lease and held:
                local.STORE.release(lease_id, held)
            return {
                c.name: int(v)
                for c, v in zip(counters, reply, strict=True)
                if c.kind is not Kind.PARALLEL
            }
    # The slots were taken where they are released when Redis is back: a remote lease
    # without Redis expires on its own after ttl_s.
    return local.STORE.settle(lease_id, counters, amounts, BUCKETS)
