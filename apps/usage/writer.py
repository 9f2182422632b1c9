"""Batched, loss-averse usage writer.

Requests hand rows to :func:`record` (no I/O, no await). A background task per process writes
them in batches (``apps.usage.store``: one insert, spend and rollups per batch). A failed flush
keeps the rows and retries with backoff; past ``GATEWAY_USAGE_MAX_BUFFER`` rows, or when the
database is still down at shutdown, rows are spooled to JSON-lines files in
``DATA_DIR/usage-spool`` and loaded again by the next successful flush. A batch the database
refuses for its data (not for being down) is split in halves until the bad row is alone; that
row is quarantined (``QuarantinedUsage``, or ``DATA_DIR/usage-quarantine`` if even that fails)
and every other row is written.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import contextvars
import json
import logging
import os
import time
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import psycopg
from asgiref.sync import sync_to_async
from django.db import DataError, IntegrityError
from django.utils.dateparse import parse_datetime

from apps.core.conf import conf
from apps.core.db import db_task
from apps.usage import metrics, partitions
from apps.usage.models import QuarantinedUsage
from apps.usage.store import write_rows

logger = logging.getLogger(__name__)

Row = dict[str, Any]

# Errors that belong to the rows, not to the database being unreachable: worth splitting the
# batch over. (Python-side errors come from a row that cannot even be encoded.)
ROW_ERRORS: tuple[type[Exception], ...] = (
    DataError,
    IntegrityError,
    psycopg.DataError,  # raised by COPY on the raw connection, untranslated by Django
    psycopg.IntegrityError,
    ValueError,
    TypeError,
    KeyError,
    AttributeError,
    OverflowError,
)
MAINTENANCE_EVERY_S = 3600.0


def _spool_dir() -> Path:
    return Path(conf.DATA_DIR) / "usage-spool"


def _quarantine_dir() -> Path:
    return Path(conf.DATA_DIR) / "usage-quarantine"


def quarantine(row: Row, error: BaseException) -> None:
    """Keep a row the database refused; never raises for the row's own content."""
    text = _encode(row).decode()
    message = f"{type(error).__name__}: {error}"[:2000]
    logger.error("usage row %s quarantined: %s", row.get("request_id"), message)
    try:
        QuarantinedUsage.objects.create(
            request_id=str(row.get("request_id") or "")[:64].replace("\x00", ""),
            error=message.replace("\x00", ""),
            row=text,
        )
    except DataError:
        directory = _quarantine_dir()
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{int(time.time() * 1000)}-{os.getpid()}-{uuid.uuid4().hex[:8]}.json"
        path.write_text(orjson.dumps({"error": message, "row": text}).decode())


def write_batch(rows: list[Row]) -> tuple[int, int]:
    """Write ``rows``; a batch refused for its data is split until each bad row is alone and
    quarantined. Returns (rows written, rows quarantined). Raises when the database is down
    (then nothing of the failing part is written; what was written stays, and a retry cannot
    double it)."""
    try:
        return write_rows(rows), 0
    except ROW_ERRORS as exc:
        partitions.forget()  # a partition dropped behind our back looks like a bad row
        if len(rows) == 1:
            try:
                return write_rows(rows), 0
            except ROW_ERRORS as again:
                del exc
                quarantine(rows[0], again)
                return 0, 1
        middle = len(rows) // 2
        first = write_batch(rows[:middle])
        second = write_batch(rows[middle:])
        return first[0] + second[0], first[1] + second[1]


def run_maintenance() -> None:
    partitions.maintain()


def _meter_and_write(batch: list[Row], new: list[Row]) -> tuple[int, int]:
    """Count ``new`` rows (first time seen) in the metrics, then write ``batch``."""
    if new:
        try:
            metrics.meter(new)
        except Exception:
            logger.exception("usage metrics could not be counted")
    if not batch:
        return 0, 0
    return write_batch(batch)


def _encode(row: Row) -> bytes:
    try:
        return orjson.dumps(row, default=str)
    except TypeError:  # integers past 64 bits: the standard library writes them
        return json.dumps(row, default=str).encode()


def _decode(line: bytes) -> Row:
    row: Row = orjson.loads(line)
    for name in ("start_time", "end_time"):
        row[name] = parse_datetime(row[name])
    row["cost"] = Decimal(row.get("cost") or 0)
    return row


def spool(rows: list[Row]) -> None:
    directory = _spool_dir()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{int(time.time() * 1000)}-{os.getpid()}-{uuid.uuid4().hex[:8]}.jsonl"
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as fh:
        for row in rows:
            fh.write(_encode(row) + b"\n")
        fh.flush()
        os.fsync(fh.fileno())
    tmp.rename(path)
    logger.warning("database unavailable: %d usage rows spooled to %s", len(rows), path)


def drain_spool() -> int:
    """Write spooled rows to the database; returns how many. Files go only once written."""
    directory = _spool_dir()
    if not directory.is_dir():
        return 0
    total = 0
    for path in sorted(directory.glob("*.jsonl")):
        claimed = path.with_suffix(f".{os.getpid()}.claim")
        try:
            path.rename(claimed)  # another process may be draining the same file
        except FileNotFoundError:
            continue
        try:
            rows = [_decode(line) for line in claimed.read_bytes().splitlines() if line.strip()]
        except (ValueError, TypeError, KeyError):
            claimed.rename(path)
            logger.error("usage spool file %s is unreadable; left for an operator", path)
            continue
        try:
            written, _quarantined = write_batch(rows)
        except Exception:
            claimed.rename(path)
            raise
        claimed.unlink()
        total += written
    return total


class UsageWriter:
    def __init__(self) -> None:
        self._rows: list[Row] = []
        self._unmetered: list[Row] = []
        self._task: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None
        self._failures = 0
        self._flush_lock: asyncio.Lock | None = None
        self._spool_checked = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock_loop: asyncio.AbstractEventLoop | None = None
        self._maintained_at = float("-inf")
        self.quarantined = 0  # rows refused by the database since start
        self.spooled = 0  # rows sent to the spool since start

    def record(self, row: Row) -> None:
        """Queue one row; never blocks, never raises for database trouble."""
        self._rows.append(row)
        self._unmetered.append(row)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        if self._loop is not loop or self._task is None or self._task.done():
            self._start(loop)
        elif len(self._rows) >= conf.GATEWAY_USAGE_BATCH and self._wake is not None:
            self._wake.set()

    def _count_quarantined(self, n: int) -> None:
        if n:
            self.quarantined += n
            metrics.QUARANTINED.inc(n)

    def _count_spooled(self, n: int) -> None:
        self.spooled += n
        metrics.SPOOLED.inc(n)

    @property
    def pending(self) -> int:
        return len(self._rows)

    def _start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._wake = asyncio.Event()
        # A context of its own: the request that happens to start the task must not lend it
        # its request id (or anything else in its context) for good.
        self._task = loop.create_task(self._run(), context=contextvars.Context())

    async def _run(self) -> None:
        assert self._wake is not None
        while True:
            delay = conf.GATEWAY_USAGE_FLUSH_S * (2 ** min(self._failures, 6))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=min(delay, 30.0))
            self._wake.clear()
            await self.flush()

    async def flush(self) -> int:
        """Write what is buffered now. Returns rows written; keeps them on failure."""
        loop = asyncio.get_running_loop()
        if self._flush_lock is None or self._lock_loop is not loop:
            self._lock_loop = loop
            self._flush_lock = asyncio.Lock()
        async with self._flush_lock:
            batch, self._rows = self._rows, []
            new, self._unmetered = self._unmetered, []
            written = 0
            metrics.IN_FLIGHT.set(metrics.InFlight.value)
            metrics.QUEUE.set(len(batch))
            try:
                if batch or new:
                    # ``new`` rows are counted in the metrics first, once, even if the write
                    # fails and the rows wait for the next flush.
                    written, quarantined = await db_task(_meter_and_write)(batch, new)
                    self._count_quarantined(quarantined)
                    batch = []  # written: a failing spool drain must not queue it again
                if time.monotonic() - self._maintained_at > MAINTENANCE_EVERY_S:
                    await db_task(run_maintenance)()
                    self._maintained_at = time.monotonic()
                if not self._spool_checked or self._failures:
                    written += await db_task(drain_spool)()
                    self._spool_checked = True
                self._failures = 0
            except Exception as exc:
                self._failures += 1
                self._rows[:0] = batch
                logger.error("usage flush failed (%d rows kept): %s", len(self._rows), exc)
                if len(self._rows) > conf.GATEWAY_USAGE_MAX_BUFFER:
                    overflow, self._rows = self._rows, []
                    await sync_to_async(spool, thread_sensitive=False)(overflow)
                    self._count_spooled(len(overflow))
            return written

    async def close(self) -> None:
        """Stop the task and write everything; what the database refuses is spooled."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
        await self.flush()
        if self._rows:
            rows, self._rows = self._rows, []
            await sync_to_async(spool, thread_sensitive=False)(rows)
            self._count_spooled(len(rows))


writer = UsageWriter()


@atexit.register
def _spool_at_exit() -> None:
    """Servers without a lifespan shutdown (daphne), or an exit before the last flush: rows
    still queued go to the spool, to be written by the next process that starts."""
    if writer._rows:
        rows, writer._rows = writer._rows, []
        try:
            spool(rows)
        except OSError:
            logger.exception("%d usage rows could not be spooled at exit", len(rows))
