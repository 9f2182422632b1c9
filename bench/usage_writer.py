"""The usage writer on its own: rows per second it sustains, and the CPU it costs.

Run with the project's virtualenv from a checkout (``python bench/usage_writer.py``). It drops and
creates the database ``bench_usage_writer`` (or ``--database-url``), migrates it, then:

- builds ``--rows`` usage rows through ``usage_record`` (the request path's share: µs per row);
- writes them in batches of ``--batch`` with ``apps.usage.writer.write_rows``, the function the
  writer's thread runs, timing wall clock and that thread's CPU (``time.thread_time``: the time
  it holds the GIL, or runs C code, that the request loop then waits for).

It prints one JSON object. The writer's CPU share of a gateway serving R requests/s is
``R x cpu_us_per_row / 1e6`` of a core; ``--rate`` gives R (default 5,000/s, about one worker's
non-stream throughput at 32 connections, see README.md).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "proxy_project.settings")


def _fresh_database(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    admin = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')


def _build_rows(count: int) -> tuple[list[dict[str, Any]], float]:
    """Rows as the gateway queues them, and the µs per row that building them took."""
    from django.utils import timezone

    from apps.keys.auth import Principal
    from apps.keys.models import VirtualKey
    from apps.providers.schemas import Target, Usage
    from apps.routing.selectors import Candidate, PriceOverride
    from apps.usage import services

    keys = list(VirtualKey.objects.values_list("pk", "team_id", "team__organization_id"))
    rows: list[dict[str, Any]] = []

    class Recorder:
        def record(self, row: dict[str, Any]) -> None:
            rows.append(row)

    services.writer = Recorder()  # type: ignore[assignment]
    candidate = Candidate(
        target=Target(deployment_id="dep-1", provider="openai", model="gpt-4o-mini"),
        prices=PriceOverride(),
    )
    principals = [
        Principal(key_id=pk, key_alias=f"k{pk}", team_id=team, organization_id=org, user_id="u")
        for pk, team, org in keys
    ]
    events = [
        services.UsageEvent(
            request_id=f"req-bench-{n:012d}",
            call_type="chat_completions",
            principal=principals[n % len(principals)],
            model_group="bench-gpt",
            start_time=timezone.now(),
            latency_ms=12,
            status_code=200,
            candidate=candidate,
            usage=Usage(prompt_tokens=30 + n % 7, completion_tokens=12),
            end_user=f"cust-{n % 50}",
            metadata={"tags": ["bench"]},
        )
        for n in range(count)
    ]
    started = time.perf_counter()
    for event in events:
        services.usage_record(event)
    return rows, (time.perf_counter() - started) / count * 1e6


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rows", type=int, default=50_000)
    p.add_argument("--batch", type=int, default=500)
    p.add_argument("--rate", type=float, default=5000.0, help="requests/s for the CPU share")
    p.add_argument(
        "--database-url",
        default=os.environ.get(
            "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/bench_usage_writer"
        ),
    )
    args = p.parse_args()
    _fresh_database(args.database_url)
    os.environ["DATABASE_URL"] = args.database_url
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)
    from apps.keys.services import key_issue
    from apps.teams.models import Organization, Team
    from apps.usage.models import UsageLog
    from apps.usage.writer import write_rows

    org = Organization.objects.create()
    for t in range(4):
        team = Team.objects.create(team_alias=f"bench-{t}", organization=org)
        for _ in range(5):
            key_issue(team=team)
    rows, build_us = _build_rows(args.rows)
    write_rows(rows[: args.batch])  # warm: connection, staging table, statements
    rows = rows[args.batch :]
    wall = time.perf_counter()
    cpu = time.thread_time()
    profiler = None
    if os.environ.get("BENCH_PROFILE"):
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    for start in range(0, len(rows), args.batch):
        write_rows(rows[start : start + args.batch])
    if profiler is not None:
        import pstats

        profiler.disable()
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("tottime").print_stats(15)
    cpu = time.thread_time() - cpu
    wall = time.perf_counter() - wall
    assert UsageLog.objects.count() == args.rows
    cpu_us = cpu / len(rows) * 1e6
    print(
        json.dumps(
            {
                "rows": len(rows),
                "batch": args.batch,
                "rows_per_s": round(len(rows) / wall),
                "writer_cpu_us_per_row": round(cpu_us, 2),
                "usage_record_us_per_row": round(build_us, 2),
                "writer_core_share_at_rate": round(args.rate * cpu_us / 1e6, 4),
                "rate": args.rate,
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
