"""Writing a batch of usage rows: insert (idempotent on ``(request_id, start_time)``), then add
what was really inserted to spend and the daily rollups, all in one transaction.

PostgreSQL: the batch goes by COPY into a session-local staging table, then one
``INSERT ... SELECT ... ON CONFLICT DO NOTHING RETURNING`` moves it into the (partitioned)
usage table. COPY is several times cheaper in CPU than an ORM insert, which matters because
the flush thread shares the GIL with the request loop; the returned ids say which rows were
new, so a replayed row (from the spool after a partial failure, say) adds nothing twice.
"""

from __future__ import annotations

import hashlib
import json
import operator
from collections import Counter
from typing import Any

import orjson
from django.db import connection, transaction

from apps.usage import accrual, partitions
from apps.usage.models import UsageLog

Row = dict[str, Any]

_FIELDS = [f.attname for f in UsageLog._meta.concrete_fields if not f.primary_key]
_COLUMNS = [
    f.column
    for f in UsageLog._meta.concrete_fields
    if not f.primary_key  # type: ignore[union-attr]
]
_DEFAULTS = {f.attname: f.get_default() for f in UsageLog._meta.concrete_fields}
_ROW_VALUES = operator.itemgetter(*_FIELDS)
_METADATA = _FIELDS.index("metadata")
# A new staging table whenever the columns change (a pooled session may outlive a migration).
_STAGE = "usage_stage_" + hashlib.sha1(",".join(_COLUMNS).encode()).hexdigest()[:10]  # noqa: S324


def copy_values(row: Row) -> list[Any]:
    """A row's values in column order. ``metadata`` goes as JSON text, which the server
    parses for the jsonb column: orjson here costs a fraction of psycopg's Jsonb dumper."""
    try:
        values = list(_ROW_VALUES(row))
    except KeyError:  # a row spooled by an older version may lack newer fields
        values = [row.get(f, _DEFAULTS[f]) for f in _FIELDS]
    metadata = values[_METADATA] or {}
    try:
        values[_METADATA] = orjson.dumps(metadata).decode()
    except TypeError:  # integers past 64 bits: the standard library writes them
        values[_METADATA] = json.dumps(metadata, default=str)
    return values


def _insert_postgresql(rows: list[Row]) -> int:
    """Stage, insert the new rows, account for them; returns how many were new."""
    quote = connection.ops.quote_name
    table = quote(UsageLog._meta.db_table)
    columns = ", ".join(quote(c) for c in _COLUMNS)
    raw = connection.connection
    assert raw is not None
    with raw.cursor() as cursor:
        cursor.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {_STAGE} ON COMMIT DELETE ROWS AS "  # noqa: S608
            f"SELECT {columns} FROM {table} WITH NO DATA"
        )
        _stage(cursor, rows, columns)
        cursor.execute(
            f"INSERT INTO {table} ({columns}) SELECT {columns} FROM {_STAGE} "  # noqa: S608
            "ON CONFLICT (request_id, start_time) DO NOTHING RETURNING request_id"
        )
        count = cursor.rowcount
        if count != len(rows):
            # Some rows were there already (a replay): account only for the others.
            fresh = _take(rows, Counter(rid for (rid,) in cursor.fetchall()))
            cursor.execute(f"TRUNCATE {_STAGE}")
            _stage(cursor, fresh, columns)
        if count:
            cursor.execute(accrual.staged_sql(_STAGE))
    return count


def _stage(cursor: Any, rows: list[Row], columns: str) -> None:
    with cursor.copy(f"COPY {_STAGE} ({columns}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(copy_values(row))


def _take(rows: list[Row], inserted: Counter[str]) -> list[Row]:
    """The rows among ``rows`` that were inserted, by request id (first occurrence wins)."""
    kept = []
    for row in rows:
        rid = row["request_id"]
        if inserted[rid] > 0:
            inserted[rid] -= 1
            kept.append(row)
    return kept


def _insert_other(rows: list[Row]) -> int:
    """SQLite (one writer at a time): skip rows already stored, insert and account for the
    rest."""
    seen: set[tuple[str, Any]] = set()
    ids = sorted({row["request_id"] for row in rows})
    for start in range(0, len(ids), 500):
        seen.update(
            UsageLog.objects.filter(request_id__in=ids[start : start + 500]).values_list(
                "request_id", "start_time"
            )
        )
    fresh = []
    for row in rows:
        ident = (row["request_id"], row["start_time"])
        if ident not in seen:
            seen.add(ident)
            fresh.append(row)
    UsageLog.objects.bulk_create(
        [UsageLog(**{f: row.get(f, _DEFAULTS[f]) for f in _FIELDS}) for row in fresh],
        batch_size=500,
    )
    accrual.apply(fresh)
    return len(fresh)


def write_rows(rows: list[Row]) -> int:
    """Insert ``rows`` and account for the new ones, in one transaction; returns how many were
    new. Raises the database's error (the whole batch then stays unwritten)."""
    if not rows:
        return 0
    partitions.ensure_for(row["start_time"] for row in rows)
    with transaction.atomic():
        if connection.vendor == "postgresql":
            return _insert_postgresql(rows)
        return _insert_other(rows)
