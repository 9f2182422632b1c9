"""What the router knows about each deployment right now, in this process: requests in flight,
latency, this minute's requests and tokens, recent failures and cooldowns.

Everything here is plain memory touched only from the event loop (no locks, no I/O). With
``REDIS_URL`` set, :mod:`apps.routing.shared` keeps the same figures in Redis for every
instance and folds the other instances' view back in here (``remote_*`` fields).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

# Weight of the newest sample in the latency moving averages.
_EWMA_ALPHA = 0.3


@dataclass(slots=True)
class Stats:
    in_flight: int = 0
    latency_s: float | None = None
    ttft_s: float | None = None
    minute: int = 0
    requests: int = 0
    tokens: int = 0
    fail_minute: int = 0
    fails: int = 0
    # Other instances' figures, from the last Redis sync.
    remote_in_flight: int = 0
    remote_latency_s: float | None = None
    remote_ttft_s: float | None = None
    # This minute's requests and tokens on the other instances.
    remote_minute: int = 0
    remote_requests: int = 0
    remote_tokens: int = 0

    def roll(self, minute: int) -> None:
        if self.minute != minute:
            self.minute = minute
            self.requests = 0
            self.tokens = 0


_stats: dict[str, Stats] = {}
# Deployments cooling down -> wall-clock time (time.time()) they come back; shared across
# instances. Kept apart so that the common case (none) costs one truth test per request.
_cooling: dict[str, float] = {}


def stats(deployment_id: str) -> Stats:
    found = _stats.get(deployment_id)
    if found is None:
        found = _stats[deployment_id] = Stats()
    return found


def peek(deployment_id: str) -> Stats | None:
    return _stats.get(deployment_id)


def reset() -> None:
    """Forget everything (tests)."""
    _stats.clear()
    _cooling.clear()


def current_minute(now: float | None = None) -> int:
    return int((time.time() if now is None else now) // 60)


def seconds_to_next_minute(now: float | None = None) -> float:
    now = time.time() if now is None else now
    return 60.0 - now % 60


def cooldown_remaining(deployment_id: str, now: float | None = None) -> float:
    until = _cooling.get(deployment_id)
    if until is None:
        return 0.0
    left = until - (time.time() if now is None else now)
    return left if left > 0 else 0.0


def any_cooling() -> bool:
    return bool(_cooling)


def cooled_down(deployment_id: str, now: float) -> bool:
    until = _cooling.get(deployment_id)
    if until is None:
        return False
    if until > now:
        return True
    del _cooling[deployment_id]  # over: forget it
    return False


def has_room(
    deployment_id: str, rpm: int | None, tpm: int | None, tokens: int, minute: int
) -> bool:
    """Whether this minute's requests and tokens leave room for one more request of
    ``tokens`` estimated prompt tokens (a deployment without limits always has room)."""
    if rpm is None and tpm is None:
        return True
    found = stats(deployment_id)
    found.roll(minute)
    if rpm is not None and found.requests >= rpm:
        return False
    return tpm is None or found.tokens + tokens <= tpm


def take(deployment_id: str, minute: int) -> None:
    found = stats(deployment_id)
    found.roll(minute)
    found.requests += 1


def add_tokens(deployment_id: str, tokens: int) -> None:
    found = stats(deployment_id)
    found.roll(current_minute())
    found.tokens += tokens


def started(deployment_id: str) -> None:
    stats(deployment_id).in_flight += 1


def ended(deployment_id: str) -> None:
    found = stats(deployment_id)
    if found.in_flight > 0:
        found.in_flight -= 1


def _ewma(old: float | None, sample: float) -> float:
    return sample if old is None else old + _EWMA_ALPHA * (sample - old)


def record_latency(deployment_id: str, seconds: float, ttft_s: float | None) -> None:
    found = stats(deployment_id)
    found.latency_s = _ewma(found.latency_s, seconds)
    if ttft_s is not None:
        found.ttft_s = _ewma(found.ttft_s, ttft_s)


def count_failure(deployment_id: str, now: float) -> int:
    """One more failure this minute; returns the count."""
    found = stats(deployment_id)
    minute = current_minute(now)
    if found.fail_minute != minute:
        found.fail_minute = minute
        found.fails = 0
    found.fails += 1
    return found.fails


def cool_down(deployment_id: str, until: float) -> None:
    if until > _cooling.get(deployment_id, 0.0):
        _cooling[deployment_id] = until
        stats(deployment_id).fails = 0


def used_this_minute(deployment_id: str, minute: int) -> tuple[int, int]:
    """(requests, tokens) of a deployment this minute, every instance counted."""
    found = _stats.get(deployment_id)
    if found is None:
        return 0, 0
    requests = found.requests if found.minute == minute else 0
    tokens = found.tokens if found.minute == minute else 0
    if found.remote_minute == minute:
        requests += found.remote_requests
        tokens += found.remote_tokens
    return requests, tokens


def in_flight(deployment_id: str) -> int:
    found = _stats.get(deployment_id)
    return 0 if found is None else found.in_flight + found.remote_in_flight


def latency(deployment_id: str, stream: bool) -> float | None:
    """The moving average of a deployment's latency (time to first token for streams, where
    known), this instance's and the others' averaged."""
    found = _stats.get(deployment_id)
    if found is None:
        return None
    mine = (found.ttft_s if stream else None) or found.latency_s
    theirs = (found.remote_ttft_s if stream else None) or found.remote_latency_s
    if mine is None:
        return theirs
    if theirs is None:
        return mine
    return (mine + theirs) / 2
