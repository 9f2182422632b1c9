"""The gateway's clocks, read through this module so tests can put them under control.

Expiry and cache-lifetime code calls ``clock.monotonic()`` / ``clock.now()`` / ``clock.time()``
(module attribute lookups at call time, not imported names), and the tests' ``clock`` fixture
replaces the three with one manual clock that only moves when told to.
"""

from __future__ import annotations

import time as _time
from datetime import UTC, datetime


def monotonic() -> float:
    """Seconds on a clock that never goes back: for lifetimes and timeouts."""
    return _time.monotonic()


def time() -> float:
    """Seconds since the epoch: for expiries given as UNIX times."""
    return _time.time()


def now() -> datetime:
    """The current time, timezone-aware (UTC), as ``django.utils.timezone.now`` gives it."""
    return datetime.now(UTC)
