"""The batched usage writer: batches, retries, the disk spool and its drain."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.db import OperationalError
from django.utils import timezone

from apps.core.db import db_task
from apps.keys.services import key_issue
from apps.teams.models import Team
from apps.usage import writer as writer_mod
from apps.usage.models import UsageLog
from apps.usage.writer import UsageWriter, drain_spool, spool, write_rows

pytestmark = pytest.mark.usefixtures("thread_db")

START = timezone.now().replace(microsecond=123000)


def make_row(n: int, **fields: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "request_id": f"req-{n}",
        "call_type": "chat",
        "key_id": None,
        "team_id": None,
        "model_group": "gpt",
        "prompt_tokens": 10 + n,
        "completion_tokens": 5,
        "total_tokens": 15 + n,
        "cost": Decimal("0.0000123456"),
        "status_code": 200,
        "latency_ms": 42,
        "ttft_ms": None,
        "stream": False,
        "metadata": {"n": n, "tags": ["a", "b"]},
        "start_time": START,
        "end_time": START + timedelta(milliseconds=42),
    }
    row.update(fields)
    return row


@pytest.fixture
def spool_dir(settings, tmp_path) -> Path:
    settings.DATA_DIR = tmp_path
    return tmp_path / "usage-spool"


class Database:
    """Switches the writer's database writes off and on, counting the calls."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.up = True
        self.calls = 0
        self.failures = 0
        monkeypatch.setattr(writer_mod, "write_rows", self.write_rows)

    def write_rows(self, rows: list[dict[str, Any]]) -> int:
        self.calls += 1
        if not self.up:
            self.failures += 1
            raise OperationalError("connection refused")
        return write_rows(rows)


@pytest.fixture
def database(monkeypatch) -> Database:
    return Database(monkeypatch)


def _spooled(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.jsonl")) if directory.is_dir() else []


async def _count() -> int:
    return await db_task(UsageLog.objects.count)()


async def _request_ids() -> list[str]:
    return await db_task(lambda: list(UsageLog.objects.values_list("request_id", flat=True)))()


async def _rows() -> list[UsageLog]:
    return await db_task(lambda: list(UsageLog.objects.order_by("request_id")))()


async def _wait_for_rows(count: int, timeout: float = 3.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while await _count() < count:
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{count} rows not written in time")
        await asyncio.sleep(0.02)


async def test_flush_writes_the_whole_batch_at_once(spool_dir, database, settings):
    settings.GATEWAY_USAGE_FLUSH_S = 60
    writer = UsageWriter()
    for n in range(5):
        writer.record(make_row(n))
    assert writer.pending == 5
    assert await writer.flush() == 5
    assert writer.pending == 0
    assert database.calls == 1
    assert await _count() == 5
    await writer.close()


async def test_a_full_batch_wakes_the_background_flush(spool_dir, database, settings):
    settings.GATEWAY_USAGE_FLUSH_S = 60
    settings.GATEWAY_USAGE_BATCH = 3
    writer = UsageWriter()
    for n in range(3):
        writer.record(make_row(n))
    await _wait_for_rows(3)
    assert database.calls == 1
    await writer.close()


async def test_rows_are_flushed_periodically(spool_dir, database, settings):
    settings.GATEWAY_USAGE_FLUSH_S = 0.05
    writer = UsageWriter()
    writer.record(make_row(1))
    await _wait_for_rows(1)
    writer.record(make_row(2))
    await _wait_for_rows(2)
    await writer.close()


async def test_a_failed_flush_keeps_the_rows_and_retries(spool_dir, database, settings):
    settings.GATEWAY_USAGE_FLUSH_S = 60
    writer = UsageWriter()
    database.up = False
    for n in range(3):
        writer.record(make_row(n))
    assert await writer.flush() == 0
    writer.record(make_row(3))
    assert await writer.flush() == 0
    assert writer.pending == 4
    database.up = True
    assert await writer.flush() == 4
    assert writer.pending == 0
    assert sorted(await _request_ids()) == ["req-0", "req-1", "req-2", "req-3"]
    await writer.close()


async def test_the_background_task_retries_until_the_database_is_back(
    spool_dir, database, settings
):
    settings.GATEWAY_USAGE_FLUSH_S = 0.02
    writer = UsageWriter()
    database.up = False
    writer.record(make_row(1))
    while database.failures < 2:
        await asyncio.sleep(0.01)
    assert writer.pending == 1
    database.up = True
    await _wait_for_rows(1)
    assert writer.pending == 0
    await writer.close()


async def test_rows_past_the_buffer_limit_go_to_the_spool(spool_dir, database, settings):
    settings.GATEWAY_USAGE_FLUSH_S = 60
    settings.GATEWAY_USAGE_MAX_BUFFER = 2
    writer = UsageWriter()
    database.up = False
    for n in range(3):
        writer.record(make_row(n))
    await writer.flush()
    assert writer.pending == 0
    [path] = _spooled(spool_dir)
    assert len(path.read_bytes().splitlines()) == 3
    await writer.close()


async def test_shutdown_with_the_database_down_spools_every_row(spool_dir, database, settings):
    settings.GATEWAY_USAGE_FLUSH_S = 60
    writer = UsageWriter()
    database.up = False
    writer.record(make_row(1))
    writer.record(make_row(2))
    await writer.close()
    assert writer.pending == 0
    [path] = _spooled(spool_dir)
    assert len(path.read_bytes().splitlines()) == 2
    assert await _count() == 0


async def test_spooled_rows_are_written_when_the_database_is_back(spool_dir, database, settings):
    settings.GATEWAY_USAGE_FLUSH_S = 60
    first = UsageWriter()
    database.up = False
    first.record(make_row(1, metadata={"trace": "t-1"}, ttft_ms=7, stream=True))
    first.record(make_row(2))
    await first.close()
    assert len(_spooled(spool_dir)) == 1
    # The next process (or the same one, later) drains the spool on its first good flush.
    database.up = True
    second = UsageWriter()
    second.record(make_row(3))
    assert await second.flush() == 3
    assert _spooled(spool_dir) == []
    assert list(spool_dir.iterdir()) == []
    rows = await _rows()
    assert [r.request_id for r in rows] == ["req-1", "req-2", "req-3"]
    one = rows[0]
    assert one.metadata == {"trace": "t-1"}
    assert (one.ttft_ms, one.stream, one.prompt_tokens) == (7, True, 11)
    assert one.cost == Decimal("0.0000123456")
    assert one.start_time == START
    assert one.end_time == START + timedelta(milliseconds=42)
    await second.close()


async def test_spool_is_drained_after_a_failure_even_without_new_rows(
    spool_dir, database, settings
):
    settings.GATEWAY_USAGE_FLUSH_S = 60
    settings.GATEWAY_USAGE_MAX_BUFFER = 0
    writer = UsageWriter()
    database.up = False
    writer.record(make_row(1))
    await writer.flush()
    assert len(_spooled(spool_dir)) == 1
    database.up = True
    assert await writer.flush() == 1
    assert _spooled(spool_dir) == []
    await writer.close()


async def test_an_undrainable_spool_file_never_duplicates_the_batch(spool_dir, database, settings):
    """A batch written before the spool drain failed used to be queued again, and written
    again on every following flush: duplicate rows and spend counted twice."""
    settings.GATEWAY_USAGE_FLUSH_S = 60
    spool_dir.mkdir(parents=True)
    (spool_dir / "0-1-corrupt.jsonl").write_bytes(b"this is not a usage row\n")
    writer = UsageWriter()
    writer.record(make_row(1))
    await writer.flush()
    writer.record(make_row(2))
    await writer.flush()
    await writer.flush()
    assert sorted(await _request_ids()) == ["req-1", "req-2"]
    assert writer.pending == 0
    # The bad file stays for an operator to look at.
    assert [p.name for p in _spooled(spool_dir)] == ["0-1-corrupt.jsonl"]
    await writer.close()


def test_write_rows_adds_cost_to_key_and_team_spend():
    team = Team.objects.create(team_alias="t")
    key, _ = key_issue(team=team)
    write_rows(
        [
            make_row(1, key_id=key.pk, team_id=team.pk, cost=Decimal("0.5")),
            make_row(2, key_id=key.pk, team_id=team.pk, cost=Decimal("0.25")),
            make_row(3, key_id=None, team_id=None, cost=Decimal("9")),
            make_row(4, key_id=key.pk, team_id=team.pk, cost=Decimal("0")),
        ]
    )
    key.refresh_from_db()
    team.refresh_from_db()
    assert (key.spend, team.spend) == (Decimal("0.75"), Decimal("0.75"))
    assert UsageLog.objects.count() == 4


def test_spool_and_drain_round_trip(spool_dir):
    spool([make_row(1), make_row(2)])
    spool([make_row(3)])
    assert len(_spooled(spool_dir)) == 2
    assert drain_spool() == 3
    assert drain_spool() == 0
    assert UsageLog.objects.count() == 3


def test_drain_keeps_the_file_when_the_write_fails(spool_dir, database):
    spool([make_row(1)])
    database.up = False
    with pytest.raises(OperationalError):
        drain_spool()
    assert len(_spooled(spool_dir)) == 1
    assert [p.suffix for p in spool_dir.iterdir()] == [".jsonl"]
