"""Prepare and inspect the benchmark's gateway database (run with the project's virtualenv).

``setup`` migrates a fresh database, routes the model groups ``bench-gpt`` (instant upstream),
``bench-slow`` (the latency upstream) and ``bench-drip`` (chunks spaced in time) to the fake
OpenAI upstreams through the ``openai`` provider, issues a virtual key allowed to use them, and
prints ``{"key": ...}`` as JSON. With ``--limits`` the key and its team carry a budget and rpm,
tpm and parallel limits (high enough never to refuse the bench's load), so every request goes
through the limiter's checks and settling.
``count`` prints how many usage rows were written (total, status 200, 200 with tokens).

The database comes from ``DATABASE_URL`` as for the gateway itself.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "proxy_project.settings")

GROUPS = {"bench-gpt": "upstream", "bench-slow": "slow_upstream", "bench-drip": "drip_upstream"}
UPSTREAM_MODEL = "gpt-4o-mini"
UPSTREAM_KEY = "sk-bench-upstream-0000000000"


LIMITS = {
    "max_budget": 1_000_000,
    "rpm_limit": 1_000_000_000,
    "tpm_limit": 1_000_000_000_000,
    "max_parallel_requests": 100_000,
}


def setup(
    upstream: str, slow_upstream: str, drip_upstream: str, limits: bool = False
) -> dict[str, str]:
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0, stdout=io.StringIO())

    from apps.core.secrets import encrypt
    from apps.keys.services import key_issue
    from apps.routing.models import Deployment, ModelGroup
    from apps.teams.models import Team

    bases = {
        "upstream": upstream,
        "slow_upstream": slow_upstream,
        "drip_upstream": drip_upstream,
    }
    for name, which in GROUPS.items():
        group, _ = ModelGroup.objects.get_or_create(name=name)
        group.deployments.all().delete()
        Deployment.objects.create(
            group=group,
            provider="openai",
            model=UPSTREAM_MODEL,
            api_base=bases[which].rstrip("/") + "/v1",
            api_key=encrypt(UPSTREAM_KEY),
        )
    team, _ = Team.objects.get_or_create(team_alias="bench")
    key_limits: dict[str, int] = {}
    if limits:
        key_limits = dict(LIMITS)
        team.max_budget = LIMITS["max_budget"]
        team.rpm_limit = LIMITS["rpm_limit"]
        team.tpm_limit = LIMITS["tpm_limit"]
        team.save()
    _key, raw = key_issue(team=team, key_alias="bench", models=list(GROUPS), **key_limits)
    return {"key": raw}


def count() -> dict[str, int]:
    from apps.usage.models import UsageLog

    rows = UsageLog.objects.all()
    return {
        "rows": rows.count(),
        "ok_rows": rows.filter(status_code=200).count(),
        "ok_rows_with_tokens": rows.filter(status_code=200, total_tokens__gt=0).count(),
    }


def truncate() -> dict[str, int]:
    """Empty the usage table; returns the counts it held (for the usage-row check)."""
    from django.db import connection

    from apps.usage.models import UsageLog

    held = count()
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {connection.ops.quote_name(UsageLog._meta.db_table)}")
    return held


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p_setup = sub.add_parser("setup")
    p_setup.add_argument("--upstream", required=True)
    p_setup.add_argument("--slow-upstream", required=True)
    p_setup.add_argument("--drip-upstream", required=True)
    p_setup.add_argument("--limits", action="store_true", help="budget and rate limits on the key")
    sub.add_parser("count")
    sub.add_parser("truncate")
    args = parser.parse_args()

    import django

    django.setup()
    if args.command == "setup":
        result: dict[str, object] = dict(
            setup(args.upstream, args.slow_upstream, args.drip_upstream, args.limits)
        )
    elif args.command == "truncate":
        result = dict(truncate())
    else:
        result = dict(count())
    print(json.dumps(result))


if __name__ == "__main__":
    main()
