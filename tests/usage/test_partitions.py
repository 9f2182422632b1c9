"""Monthly partitions on PostgreSQL: made ahead by the gateway, made on demand for any month a
row falls in, dropped whole past the retention period."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.db import connection

from apps.usage import partitions
from apps.usage.models import UsageLog
from apps.usage.store import write_rows
from tests.usage.rows import full_row

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _fresh_cache():
    partitions.forget()
    yield
    partitions.forget()


def _partition_of(request_id: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tableoid::regclass::text FROM usage_usagelog WHERE request_id = %s",
            [request_id],
        )
        return cursor.fetchone()[0]


def test_the_usage_table_is_partitioned_by_month():
    assert partitions.is_partitioned()
    write_rows(
        [
            full_row(1, start=datetime(2031, 3, 31, 23, 59, 59, tzinfo=UTC)),
            full_row(2, start=datetime(2031, 4, 1, 0, 0, 0, tzinfo=UTC)),
        ]
    )
    assert _partition_of("req-1") == "usage_usagelog_p203103"
    assert _partition_of("req-2") == "usage_usagelog_p203104"
    assert UsageLog.objects.count() == 2


def test_partitions_are_made_ahead(settings):
    settings.USAGE_PARTITIONS_AHEAD = 2
    partitions.maintain(datetime(2033, 11, 15, tzinfo=UTC))
    names = [name for name, _month in partitions.partitions()]
    for name in ("usage_usagelog_p203311", "usage_usagelog_p203312", "usage_usagelog_p203401"):
        assert name in names


def test_retention_drops_whole_partitions_past_the_period(settings):
    settings.USAGE_RETENTION_DAYS = 40
    now = datetime(2035, 6, 20, tzinfo=UTC)
    write_rows(
        [
            # The cutoff is May 11: April ended before it, May has rows still kept.
            full_row(1, start=datetime(2035, 4, 10, tzinfo=UTC)),
            full_row(2, start=datetime(2035, 5, 10, tzinfo=UTC)),
            full_row(3, start=datetime(2035, 6, 10, tzinfo=UTC)),
        ]
    )
    dropped = partitions.drop_expired(now)
    assert "usage_usagelog_p203504" in dropped
    assert "usage_usagelog_p203505" not in dropped
    assert sorted(UsageLog.objects.values_list("request_id", flat=True)) == ["req-2", "req-3"]
    # A late row for a dropped month gets its partition again rather than being refused.
    write_rows([full_row(4, start=datetime(2035, 4, 11, tzinfo=UTC))])
    assert UsageLog.objects.filter(request_id="req-4").exists()


def test_without_a_retention_period_nothing_is_dropped(settings):
    settings.USAGE_RETENTION_DAYS = 0
    write_rows([full_row(1, start=datetime(2001, 1, 1, tzinfo=UTC))])
    assert partitions.drop_expired(datetime(2040, 1, 1, tzinfo=UTC)) == []
    assert UsageLog.objects.count() == 1


def test_a_partition_dropped_by_another_process_is_made_again():
    write_rows([full_row(1, start=datetime(2036, 2, 2, tzinfo=UTC))])
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE usage_usagelog_p203602")
    # This process still believes the month exists: the refused batch is retried, not lost.
    from apps.usage.writer import write_batch

    assert write_batch([full_row(2, start=datetime(2036, 2, 3, tzinfo=UTC))]) == (1, 0)
