# ruff: noqa: S608 - identifiers are this module's constants, never input
"""PostgreSQL: the usage table becomes natively partitioned by month of ``start_time``.

The rows are copied into monthly partitions (created for every month that has rows, and for
this month and the next two), indexes and constraints are re-created on the new parent, and the
id sequence continues where it was. The primary key becomes ``(id, start_time)``, as a
partitioned table requires; ids stay unique since they still come from one sequence. Other
databases keep a plain table. Self-contained (no app imports), so later code cannot change
what it does.
"""

from __future__ import annotations

import re
from datetime import date

from django.db import migrations

TABLE = "usage_usagelog"
OLD = "usage_usagelog_unpartitioned"


_ON_OLD = re.compile(rf' ON (?:ONLY )?(?P<schema>\S+\.)?"?{OLD}"? ')


def _next(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


def _indexes(cursor, table):
    cursor.execute(
        "SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x "
        "JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid "
        "LEFT JOIN pg_constraint c ON c.conindid = i.oid "
        "WHERE t.relname = %s AND c.oid IS NULL",
        [table],
    )
    return cursor.fetchall()


def _constraints(cursor, table):
    cursor.execute(
        "SELECT c.conname, c.contype, pg_get_constraintdef(c.oid) FROM pg_constraint c "
        "JOIN pg_class t ON t.oid = c.conrelid WHERE t.relname = %s AND c.contype IN ('p', 'u')",
        [table],
    )
    return cursor.fetchall()


def _rebuild(schema_editor, partitioned: bool) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        indexes = _indexes(cursor, TABLE)
        constraints = _constraints(cursor, TABLE)
        cursor.execute(f'ALTER TABLE "{TABLE}" RENAME TO "{OLD}"')
        tail = ' PARTITION BY RANGE ("start_time")' if partitioned else ""
        cursor.execute(
            f'CREATE TABLE "{TABLE}" (LIKE "{OLD}" INCLUDING DEFAULTS INCLUDING IDENTITY '
            f"INCLUDING CONSTRAINTS INCLUDING STORAGE){tail}"
        )
        if partitioned:
            cursor.execute(
                f"SELECT DISTINCT date_trunc('month', start_time AT TIME ZONE 'UTC')::date "
                f"FROM \"{OLD}\" UNION SELECT date_trunc('month', now() AT TIME ZONE 'UTC')::date"
            )
            months = {m for (m,) in cursor.fetchall()}
            for month in sorted(months):
                months |= {_next(month), _next(_next(month))}
            for month in sorted(months):
                cursor.execute(
                    f'CREATE TABLE "{TABLE}_p{month.year:04d}{month.month:02d}" PARTITION OF '
                    f"\"{TABLE}\" FOR VALUES FROM ('{month.isoformat()} 00:00:00+00') "
                    f"TO ('{_next(month).isoformat()} 00:00:00+00')"
                )
        cursor.execute(f'INSERT INTO "{TABLE}" OVERRIDING SYSTEM VALUE SELECT * FROM "{OLD}"')
        cursor.execute(
            f"SELECT setval(pg_get_serial_sequence('\"{TABLE}\"', 'id'), "
            f'coalesce((SELECT max(id) FROM "{OLD}"), 0) + 1, false)'
        )
        cursor.execute(f'DROP TABLE "{OLD}"')
        for name, kind, definition in constraints:
            if kind == "p":
                definition = "PRIMARY KEY (id, start_time)" if partitioned else "PRIMARY KEY (id)"
            cursor.execute(f'ALTER TABLE "{TABLE}" ADD CONSTRAINT "{name}" {definition}')
        for _name, definition in indexes:
            cursor.execute(_ON_OLD.sub(rf" ON \g<schema>{TABLE} ", definition, count=1))


def forwards(apps, schema_editor):
    _rebuild(schema_editor, partitioned=True)


def backwards(apps, schema_editor):
    _rebuild(schema_editor, partitioned=False)


class Migration(migrations.Migration):
    dependencies = [("usage", "0002_robust_rows_and_rollups")]

    operations = [migrations.RunPython(forwards, backwards)]
