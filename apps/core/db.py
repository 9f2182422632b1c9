"""Database work from async code: run a sync function in a worker thread with a healthy
connection, returned to the pool (or closed) afterwards. Used off the hot path only: cache
misses, usage flushes, change polls."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

from asgiref.sync import sync_to_async
from django.db import close_old_connections, connection

P = ParamSpec("P")
T = TypeVar("T")


def db_task(fn: Callable[P, T]) -> Callable[P, Awaitable[T]]:
    """An async wrapper of ``fn`` running in a thread pool (not the one-thread sync executor,
    so slow queries never queue behind each other)."""

    @functools.wraps(fn)
    def run(*args: P.args, **kwargs: P.kwargs) -> T:
        close_old_connections()
        try:
            return fn(*args, **kwargs)
        finally:
            # Back to the pool (or closed): a worker thread must not pin a connection.
            connection.close()

    return sync_to_async(run, thread_sensitive=False)
