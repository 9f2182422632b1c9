"""One row the database refuses never blocks the others: the batch is split until the bad row
is alone, and that row is quarantined."""

from __future__ import annotations

from decimal import Decimal

import pytest

from apps.keys.services import key_issue
from apps.teams.models import Team
from apps.usage.models import QuarantinedUsage, UsageLog
from apps.usage.writer import UsageWriter, write_batch
from tests.usage.rows import full_row

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _data_dir(settings, tmp_path):
    settings.DATA_DIR = tmp_path


def test_a_poison_row_among_a_thousand_good_ones_writes_the_thousand():
    team = Team.objects.create(team_alias="t")
    key, _ = key_issue(team=team)
    rows = [full_row(n, key_id=key.pk, team_id=team.pk) for n in range(1000)]
    rows.insert(637, full_row(5000, key_id=key.pk, team_id=team.pk, prompt_tokens=2**70))
    assert write_batch(rows) == (1000, 1)
    assert UsageLog.objects.count() == 1000
    assert not UsageLog.objects.filter(request_id="req-5000").exists()
    [bad] = QuarantinedUsage.objects.all()
    assert bad.request_id == "req-5000"
    assert "out of range" in bad.error or "DataError" in bad.error
    assert str(2**70) in bad.row
    # Only the written rows count towards spend, each once.
    key.refresh_from_db()
    team.refresh_from_db()
    assert key.spend == team.spend == Decimal("1.000")


def test_token_counts_past_32_bits_fit_their_columns():
    """Regression: token columns were 32-bit, and one row with prompt_tokens past 2^31 failed
    its batch, which was retried forever while every row behind it waited."""
    write_batch([full_row(1, prompt_tokens=2**40, total_tokens=2**40 + 5), full_row(2)])
    assert UsageLog.objects.get(request_id="req-1").prompt_tokens == 2**40
    assert UsageLog.objects.count() == 2


def test_several_bad_rows_are_each_quarantined():
    rows = [full_row(n) for n in range(40)]
    rows[3]["latency_ms"] = -5  # fails the positive check
    rows[20]["error_message"] = "nul \x00 byte"
    rows[39]["start_time"] = "not a time"
    assert write_batch(rows) == (37, 3)
    assert sorted(QuarantinedUsage.objects.values_list("request_id", flat=True)) == sorted(
        ["req-3", "req-20", "req-39"]
    )


async def test_the_writer_keeps_going_after_a_poison_row(settings):
    from apps.core.db import db_task

    settings.GATEWAY_USAGE_FLUSH_S = 60
    writer = UsageWriter()
    for n in range(50):
        writer.record(full_row(n))
    writer.record(full_row(99, completion_tokens=-1))
    assert await writer.flush() == 50
    assert writer.pending == 0 and writer.quarantined == 1
    writer.record(full_row(100))
    assert await writer.flush() == 1
    assert await db_task(UsageLog.objects.count)() == 51
    await writer.close()


def test_a_row_quarantine_itself_refuses_goes_to_a_file(tmp_path):
    row = full_row(1, request_id="req-\x00", metadata={"k": 2**70})
    row["prompt_tokens"] = -1
    assert write_batch([row]) == (0, 1)
    # The NUL-free request id and error fit the table; the row itself is kept as JSON text.
    assert QuarantinedUsage.objects.count() + len(list(tmp_path.glob("usage-quarantine/*"))) == 1
