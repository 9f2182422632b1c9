from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from apps.keys.services import key_issue
from apps.teams.models import Team
from apps.usage.models import UsageLog
from apps.usage.writer import write_rows


def _row(key_id: int | None, team_id: int | None, cost: str, **extra) -> dict:
    now = timezone.now()
    row = {
        "request_id": f"req-{key_id}-{cost}",
        "call_type": "chat",
        "key_id": key_id,
        "team_id": team_id,
        "model_group": "gpt",
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "total_tokens": 15,
        "cost": Decimal(cost),
        "status_code": 200,
        "latency_ms": 12,
        "stream": False,
        "metadata": {"a": [1, "x"]},
        "start_time": now,
        "end_time": now + timedelta(milliseconds=12),
    }
    row.update(extra)
    return row


@pytest.mark.django_db(transaction=True)
def test_rows_are_written_and_spend_added_per_key_and_team():
    team = Team.objects.create(team_alias="t")
    key_a, _ = key_issue(team=team)
    key_b, _ = key_issue()
    write_rows(
        [
            _row(key_a.pk, team.pk, "0.25"),
            _row(key_a.pk, team.pk, "0.50", ttft_ms=3, error_message="x" * 10),
            _row(key_b.pk, None, "1.00"),
            _row(None, None, "0"),
        ]
    )
    assert UsageLog.objects.count() == 4
    row = UsageLog.objects.get(request_id=f"req-{key_a.pk}-0.50")
    assert row.metadata == {"a": [1, "x"]} and row.ttft_ms == 3 and row.cost == Decimal("0.5")
    assert UsageLog.objects.get(request_id=f"req-{key_b.pk}-1.00").ttft_ms is None
    key_a.refresh_from_db()
    key_b.refresh_from_db()
    team.refresh_from_db()
    assert key_a.spend == Decimal("0.75") and key_b.spend == Decimal("1.00")
    assert team.spend == Decimal("0.75")


@pytest.mark.django_db(transaction=True)
def test_a_bad_row_fails_the_whole_batch():
    bad = _row(None, None, "0")
    del bad["start_time"]
    with pytest.raises(Exception):  # noqa: B017 - the database's own error type
        write_rows([_row(None, None, "0.1"), bad])
    assert UsageLog.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_a_complete_row_keeps_every_value_through_copy():
    """Rows as the gateway queues them (every field present) take the fast path; metadata
    with characters that COPY's text format escapes comes back intact."""
    from apps.usage.store import _FIELDS

    metadata = {"tab": "a\tb", "nl": "c\nd", "bs": "e\\f", "uni": "é ✓", "n": [1, None]}
    row = _row(None, None, "0.125", metadata=metadata)
    fields = {f.attname: f.get_default() for f in UsageLog._meta.concrete_fields}
    complete = {name: row.get(name, fields[name]) for name in _FIELDS}
    complete["error_message"] = "quote ' and \\N and \t"
    write_rows([complete])
    saved = UsageLog.objects.get()
    assert saved.metadata == metadata
    assert saved.error_message == "quote ' and \\N and \t"
    assert saved.cost == Decimal("0.125") and saved.latency_ms == 12
