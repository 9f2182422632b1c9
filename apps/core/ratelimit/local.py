"""The in-process side of the limiter: the same semantics as the Lua scripts in :mod:`.lua`, for
a gateway without Redis or while Redis is unreachable. Runs on the event loop without awaiting,
so each call is atomic within the process."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from apps.core.ratelimit import Counter

_WINDOW, _PARALLEL, _TOTAL = 1, 2, 3
# Counters untouched this long are dropped when the store is swept.
_SWEEP_EVERY_S = 60.0
# No window keeps more buckets than this (the limiter's BUCKETS plus the current one).
_BUCKETS_KEPT = 61


def _now_ms() -> int:
    return int(time.time() * 1000)


class Store:
    def __init__(self) -> None:
        # name -> (bucket width in ms, {bucket index -> amount})
        self.windows: dict[str, tuple[int, dict[int, int]]] = {}
        self.slots: dict[str, dict[str, int]] = {}
        self.totals: dict[str, tuple[int, int]] = {}  # name -> (value, expires at ms; 0 never)
        self._next_sweep = 0.0

    def clear(self) -> None:
        self.windows.clear()
        self.slots.clear()
        self.totals.clear()

    def _window(
        self, name: str, window_ms: int, buckets: int, now: int
    ) -> tuple[dict[int, int], int, int]:
        width = max(1, window_ms // buckets)
        current = now // width
        found = self.windows.setdefault(name, (width, {}))[1]
        oldest = current - buckets
        for idx in [i for i in found if i < oldest]:
            del found[idx]
        return found, width, current

    def _slots(self, name: str, now: int) -> dict[str, int]:
        found = self.slots.setdefault(name, {})
        for lease in [k for k, exp in found.items() if exp <= now]:
            del found[lease]
        return found

    def _total(self, name: str, seed: int, now: int) -> int:
        hit = self.totals.get(name)
        if hit is None or (hit[1] and hit[1] <= now):
            return seed
        return max(hit[0], seed)

    def acquire(
        self, lease_id: str, counters: Sequence[Counter], buckets: int
    ) -> tuple[bool, int, float, tuple[int, ...]]:
        now = _now_ms()
        self._sweep(now)
        used: list[int] = []
        for index, c in enumerate(counters):
            limit = c.limit
            if c.kind == _WINDOW:
                window_ms = max(1, int(c.window_s * 1000))
                found, width, _current = self._window(c.name, window_ms, buckets, now)
                total = sum(found.values())
                used.append(total)
                if limit is not None and (total + c.take > limit or total >= limit):
                    retry_ms = window_ms
                    left = total
                    for idx in sorted(found):
                        left -= found[idx]
                        if left + c.take <= limit and left < limit:
                            retry_ms = (idx + buckets + 1) * width - now
                            break
                    return False, index, max(retry_ms, 1) / 1000, self._pad(used, counters)
            elif c.kind == _PARALLEL:
                held = self._slots(c.name, now)
                used.append(len(held))
                if limit is not None and len(held) + 1 > limit:
                    first = min(held.values(), default=now + 1000)
                    return (
                        False,
                        index,
                        max(1, min(1000, first - now)) / 1000,
                        self._pad(used, counters),
                    )
            else:
                value = self._total(c.name, c.seed, now)
                used.append(value)
                if limit is not None and value >= limit:
                    return False, index, 0.0, self._pad(used, counters)
        for index, c in enumerate(counters):
            if c.kind == _WINDOW and c.take > 0:
                found, _width, current = self._window(
                    c.name, max(1, int(c.window_s * 1000)), buckets, now
                )
                found[current] = found.get(current, 0) + c.take
                used[index] += c.take
            elif c.kind == _PARALLEL:
                self._slots(c.name, now)[lease_id] = now + max(1, int(c.ttl_s * 1000))
                used[index] += 1
        return True, -1, 0.0, tuple(used)

    @staticmethod
    def _pad(used: list[int], counters: Sequence[Counter]) -> tuple[int, ...]:
        return tuple(used + [0] * (len(counters) - len(used)))

    def release(self, lease_id: str, counters: Sequence[Counter]) -> None:
        for c in counters:
            held = self.slots.get(c.name)
            if held is not None:
                held.pop(lease_id, None)

    def settle(
        self, lease_id: str, counters: Sequence[Counter], amounts: Sequence[int], buckets: int
    ) -> dict[str, int]:
        now = _now_ms()
        out: dict[str, int] = {}
        for c, amount in zip(counters, amounts, strict=True):
            if c.kind == _WINDOW:
                found, _width, current = self._window(
                    c.name, max(1, int(c.window_s * 1000)), buckets, now
                )
                if amount > 0:
                    found[current] = found.get(current, 0) + amount
                out[c.name] = sum(found.values())
            elif c.kind == _PARALLEL:
                self.release(lease_id, [c])
            else:
                value = self._total(c.name, c.seed, now) + amount
                expires = now + int(c.ttl_s * 1000) if c.ttl_s > 0 else 0
                self.totals[c.name] = (value, expires)
                out[c.name] = value
        return out

    def raise_totals(self, values: dict[str, int]) -> None:
        """Raise totals to at least ``values`` (creating them), keeping their expiry."""
        for name, value in values.items():
            current, expires = self.totals.get(name, (0, 0))
            if value > current:
                self.totals[name] = (value, expires)

    def _sweep(self, now_ms: int) -> None:
        """Drop empty windows, slot sets and expired totals now and then (memory stays flat)."""
        now = now_ms / 1000
        if now < self._next_sweep:
            return
        self._next_sweep = now + _SWEEP_EVERY_S
        stale = [
            name
            for name, (width, found) in self.windows.items()
            if not found or max(found) < now_ms // width - _BUCKETS_KEPT
        ]
        for name in stale:
            del self.windows[name]
        for name in [n for n, held in self.slots.items() if not held]:
            del self.slots[name]
        for name in [n for n, (_v, exp) in self.totals.items() if exp and exp <= now_ms]:
            del self.totals[name]


STORE = Store()
