"""A per-process cache of values loaded from the database, with a lifetime and a generation.

Entries expire ``ttl`` seconds after they were stored. ``clear()`` (called when the data
changes, see ``apps.core.changes``) empties the cache and starts a new generation: a load that
began before the change must not store its answer after it, or the stale answer would be served
for a whole lifetime. ``get_or_load`` does that bookkeeping; the warm path is one dict lookup
and one clock read.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, Literal, TypeVar

from apps.core import clock

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class _Missing(enum.Enum):
    MISSING = enum.auto()


MISSING: Literal[_Missing.MISSING] = _Missing.MISSING


class GenerationCache(Generic[K, V]):
    """``ttl(value)`` gives each entry's lifetime in seconds when it is stored (read then, so a
    changed setting applies to the next load); past ``max_size()`` entries the cache starts
    over rather than growing without bound."""

    __slots__ = ("_entries", "_max_size", "_ttl", "generation")

    def __init__(
        self,
        *,
        ttl: Callable[[V], float],
        max_size: Callable[[], int] | None = None,
    ) -> None:
        self._entries: dict[K, tuple[V, float]] = {}
        self._ttl = ttl
        self._max_size = max_size
        self.generation = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: K) -> V | Literal[_Missing.MISSING]:
        """The value while it is fresh, else ``MISSING``."""
        entry = self._entries.get(key)
        if entry is None or entry[1] <= clock.monotonic():
            return MISSING
        return entry[0]

    def put(self, key: K, value: V, *, generation: int) -> None:
        """Store ``value``, loaded in ``generation``; dropped if the cache was cleared since."""
        if generation != self.generation:
            return
        if self._max_size is not None and len(self._entries) >= self._max_size():
            self._entries.clear()
        self._entries[key] = (value, clock.monotonic() + self._ttl(value))

    async def get_or_load(self, key: K, load: Callable[[], Awaitable[V]]) -> V:
        value = self.get(key)
        if value is not MISSING:
            return value
        generation = self.generation
        loaded = await load()
        self.put(key, loaded, generation=generation)
        return loaded

    def clear(self) -> None:
        self._entries.clear()
        self.generation += 1
