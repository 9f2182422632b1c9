"""Monthly partitions of the usage table on PostgreSQL, and retention.

The table is partitioned by ``start_time`` (migration 0003); each month is a partition named
``<table>_pYYYYMM`` covering that UTC month. The writer creates a month's partition before it
first writes a row in it, and its hourly maintenance keeps ``USAGE_PARTITIONS_AHEAD`` months
ready and drops whole partitions past ``USAGE_RETENTION_DAYS`` (a drop is instant and leaves
no bloat, unlike deleting rows). SQLite keeps one plain table; retention deletes rows there.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta

from django.conf import settings
from django.db import DatabaseError, connection

from apps.usage.models import UsageLog

logger = logging.getLogger(__name__)

_known: set[date] = set()
_partitioned: bool | None = None


def _table() -> str:
    return UsageLog._meta.db_table


def month_of(moment: datetime) -> date:
    utc = moment.astimezone(UTC)
    return date(utc.year, utc.month, 1)


def next_month(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


def partition_name(month: date) -> str:
    return f"{_table()}_p{month.year:04d}{month.month:02d}"


def forget() -> None:
    """Drop what this process believes exists (after a failed write, or in tests)."""
    global _partitioned
    _known.clear()
    _partitioned = None


def is_partitioned() -> bool:
    global _partitioned
    if _partitioned is None:
        if connection.vendor != "postgresql":
            _partitioned = False
        else:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT 1 FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partrelid "
                    "WHERE c.relname = %s AND pg_table_is_visible(c.oid)",
                    [_table()],
                )
                _partitioned = cursor.fetchone() is not None
    return _partitioned


def _create(month: date) -> None:
    quote = connection.ops.quote_name
    start, end = month, next_month(month)
    with connection.cursor() as cursor:
        try:
            cursor.execute(
                f"CREATE TABLE IF NOT EXISTS {quote(partition_name(month))} "
                f"PARTITION OF {quote(_table())} FOR VALUES FROM "
                f"('{start.isoformat()} 00:00:00+00') TO ('{end.isoformat()} 00:00:00+00')"
            )
        except DatabaseError:
            # Another process created it between our check and our statement.
            if not _exists(month):
                raise
    logger.debug("usage partition %s ready", partition_name(month))


def _exists(month: date) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [partition_name(month)])
        row = cursor.fetchone()
    return bool(row and row[0])


def ensure_for(moments: Iterable[datetime]) -> None:
    """Make sure every month from the earliest to the latest of ``moments`` has its partition
    (two comparisons per row; a statement only for a month not seen yet)."""
    if not is_partitioned():
        return
    times = list(moments)
    if not times:
        return
    month, last = month_of(min(times)), month_of(max(times))
    while month <= last:
        if month not in _known:
            _create(month)
            _known.add(month)
        month = next_month(month)


def ensure_ahead(now: datetime | None = None) -> None:
    """This month's partition and the next ``USAGE_PARTITIONS_AHEAD`` months'."""
    month = month_of(now or datetime.now(UTC))
    months = [month]
    for _ in range(settings.USAGE_PARTITIONS_AHEAD):
        months.append(next_month(months[-1]))
    ensure_for(datetime(m.year, m.month, 1, tzinfo=UTC) for m in months)


_NAME = re.compile(r"_p(\d{4})(\d{2})$")


def partitions() -> list[tuple[str, date]]:
    """(name, month) of every monthly partition, oldest first."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = %s",
            [_table()],
        )
        names = [name for (name,) in cursor.fetchall()]
    found = []
    for name in names:
        match = _NAME.search(name)
        if match:
            found.append((name, date(int(match[1]), int(match[2]), 1)))
    return sorted(found, key=lambda item: item[1])


def drop_expired(now: datetime | None = None) -> list[str]:
    """Drop every partition whose whole month is older than ``USAGE_RETENTION_DAYS``;
    returns their names. Without the setting, nothing is dropped."""
    days = settings.USAGE_RETENTION_DAYS
    if not days:
        return []
    cutoff = (now or datetime.now(UTC)) - timedelta(days=days)
    if not is_partitioned():
        deleted = UsageLog.objects.filter(start_time__lt=cutoff)._raw_delete(connection.alias)
        if deleted:
            logger.info("usage retention: %d rows older than %s deleted", deleted, cutoff)
        return []
    quote = connection.ops.quote_name
    dropped = []
    for name, month in partitions():
        end = next_month(month)
        if datetime(end.year, end.month, 1, tzinfo=UTC) > cutoff:
            continue
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {quote(name)}")
        _known.discard(month)
        dropped.append(name)
        logger.info("usage retention: partition %s dropped", name)
    return dropped


def maintain(now: datetime | None = None) -> None:
    """Partitions ahead, retention: run by each process's writer about once an hour."""
    ensure_ahead(now)
    drop_expired(now)
