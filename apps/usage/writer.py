"""Batched, loss-averse usage writer.

Requests hand rows to :func:`record` (no I/O, no await). A background task per process writes
them in batches with one bulk insert plus one spend update per key and team. A failed flush
keeps the rows and retries with backoff; past ``GATEWAY_USAGE_MAX_BUFFER`` rows, or when the
database is still down at shutdown, rows are spooled to JSON-lines files in
``DATA_DIR/usage-spool`` and loaded again by the next successful flush.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import operator
import os
import time
import uuid
from collections import defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
from asgiref.sync import sync_to_async
from django.db import connection, transaction
from django.db.models import F
from django.utils.dateparse import parse_datetime

from apps.core.conf import conf
from apps.core.db import db_task
from apps.keys.models import VirtualKey
from apps.teams.models import Team
from apps.usage.models import UsageLog

logger = logging.getLogger(__name__)

Row = dict[str, Any]


def _spool_dir() -> Path:
    return Path(conf.DATA_DIR) / "usage-spool"


_COLUMNS = [
    f.column
    for f in UsageLog._meta.concrete_fields
    if not f.primary_key  # type: ignore[union-attr]
]
_FIELDS = [f.attname for f in UsageLog._meta.concrete_fields if not f.primary_key]


def _copy_rows(rows: list[Row]) -> None:
    """PostgreSQL: one COPY for the batch, several times cheaper in CPU than an ORM insert,
    which matters because the flush thread shares the GIL with the request loop."""
    table = connection.ops.quote_name(UsageLog._meta.db_table)
    columns = ", ".join(connection.ops.quote_name(c) for c in _COLUMNS)
    raw = connection.connection
    assert raw is not None
    with raw.cursor() as cursor, cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(_copy_values(row))


def _copy_values(row: Row) -> list[Any]:
    """A row's values in column order. ``metadata`` goes as JSON text, which the server
    parses for the jsonb column: orjson here costs a fraction of psycopg's Jsonb dumper."""
    try:
        values = list(_ROW_VALUES(row))
    except KeyError:  # a row spooled by an older version may lack newer fields
        values = [row.get(f, _DEFAULTS[f]) for f in _FIELDS]
    values[_METADATA] = orjson.dumps(values[_METADATA] or {}).decode()
    return values


_DEFAULTS = {f.attname: f.get_default() for f in UsageLog._meta.concrete_fields}
_ROW_VALUES = operator.itemgetter(*_FIELDS)
_METADATA = _FIELDS.index("metadata")


def _add_spend(model: type[VirtualKey] | type[Team], amounts: dict[int, Decimal]) -> None:
    if not amounts:
        return
    if connection.vendor == "postgresql":
        table = connection.ops.quote_name(model._meta.db_table)
        values = ", ".join(["(%s, %s::numeric)"] * len(amounts))
        params: list[Any] = []
        for pk, amount in amounts.items():
            params += [pk, amount]
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} AS t SET spend = t.spend + v.amount "  # noqa: S608
                f"FROM (VALUES {values}) AS v(id, amount) WHERE t.id = v.id",
                params,
            )
        return
    for pk, amount in amounts.items():
        model.objects.filter(pk=pk).update(spend=F("spend") + amount)


def write_rows(rows: list[Row]) -> None:
    """Insert rows and add their cost to key and team spend, in one transaction."""
    key_spend: dict[int, Decimal] = defaultdict(Decimal)
    team_spend: dict[int, Decimal] = defaultdict(Decimal)
    for row in rows:
        cost = row.get("cost") or Decimal(0)
        if cost:
            if row.get("key_id"):
                key_spend[row["key_id"]] += cost
            if row.get("team_id"):
                team_spend[row["team_id"]] += cost
    with transaction.atomic():
        if connection.vendor == "postgresql":
            _copy_rows(rows)
        else:
            UsageLog.objects.bulk_create([UsageLog(**row) for row in rows], batch_size=500)
        _add_spend(VirtualKey, key_spend)
        _add_spend(Team, team_spend)


def _encode(row: Row) -> bytes:
    return orjson.dumps(row, default=str)


def _decode(line: bytes) -> Row:
    row = orjson.loads(line)
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
            write_rows(rows)
        except Exception:
            claimed.rename(path)
            raise
        claimed.unlink()
        total += len(rows)
    return total


class UsageWriter:
    def __init__(self) -> None:
        self._rows: list[Row] = []
        self._task: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None
        self._failures = 0
        self._flush_lock: asyncio.Lock | None = None
        self._spool_checked = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock_loop: asyncio.AbstractEventLoop | None = None

    def record(self, row: Row) -> None:
        """Queue one row; never blocks, never raises for database trouble."""
        self._rows.append(row)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        if self._loop is not loop or self._task is None or self._task.done():
            self._start(loop)
        elif len(self._rows) >= conf.GATEWAY_USAGE_BATCH and self._wake is not None:
            self._wake.set()

    @property
    def pending(self) -> int:
        return len(self._rows)

    def _start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._wake = asyncio.Event()
        self._task = loop.create_task(self._run())

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
            written = 0
            try:
                if batch:
                    await db_task(write_rows)(batch)
                    written = len(batch)
                    batch = []  # written: a failing spool drain must not queue it again
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
