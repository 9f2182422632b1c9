"""The issue's finish line: after a mixed run (streams, errors, fallbacks, embeddings, two
providers, several keys, teams and organizations), the rollups, the usage rows, the spend of
every key, team and organization, and /metrics all agree to the last digit."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest
from django.db.models import Sum
from prometheus_client.parser import text_string_to_metric_families

from apps.keys.models import VirtualKey
from apps.teams.models import Organization, Team
from apps.usage.models import DailyUsage, UsageLog
from tests.fakes import anthropic as fake_anthropic
from tests.fakes.server import BackgroundServer
from tests.gateway.helpers import CHAT, E2E, HELLO, usage_rows

pytestmark = E2E


@pytest.fixture
def anthropic_upstream(make_deployment: Callable[..., Any]) -> Iterator[Callable[..., Any]]:
    app, _fake = fake_anthropic.make_app()
    server = BackgroundServer(app)
    server.start()

    def build(group: str, model: str, **fields: Any) -> Any:
        return make_deployment(
            group, "anthropic", model, api_base=server.url, api_key=fake_anthropic.API_KEY, **fields
        )

    yield build
    server.stop()


def _metric_totals(http: Any) -> dict[str, float]:
    totals: dict[str, float] = defaultdict(float)
    for family in text_string_to_metric_families(http.get("/metrics").text):
        for sample in family.samples:
            totals[sample.name] += sample.value
    return totals


def test_rows_rollups_spend_and_metrics_agree_after_a_mixed_run(
    gateway_server, gateway_http, openai_upstream, anthropic_upstream, make_key
):
    openai_upstream("gpt", "error-503", order=1)  # every gpt call falls back once
    openai_upstream("gpt", "gpt-4o-mini", order=2)
    openai_upstream("embed", "text-embedding-3-small")
    openai_upstream("broken", "error-500")
    anthropic_upstream("claude", "claude-3-5-haiku-20241022")
    orgs = [Organization.objects.create(), None]
    teams = [
        Team.objects.create(team_alias="a", organization=orgs[0]),
        Team.objects.create(team_alias="b"),
    ]
    keys = [make_key(team=teams[0]), make_key(team=teams[1]), make_key()]
    before = _metric_totals(gateway_http)
    calls = 0
    for n in range(36):
        key = keys[n % 3]
        headers = {"authorization": f"Bearer {key}"}
        kind = n % 6
        if kind == 0:
            body: dict[str, Any] = {"model": "gpt", "messages": HELLO}
        elif kind == 1:
            body = {
                "model": "gpt",
                "messages": HELLO,
                "stream": True,
                "stream_options": {"include_usage": True},
            }
        elif kind == 2:
            body = {"model": "claude", "messages": HELLO, "stream": n % 4 == 2}
        elif kind == 3:
            body = {"model": "broken", "messages": HELLO}
        elif kind == 4:
            body = {"model": "nope", "messages": HELLO}
        else:
            response = gateway_http.post(
                "/v1/embeddings", json={"model": "embed", "input": ["one", "two"]}, headers=headers
            )
            assert response.status_code == 200
            calls += 1
            continue
        gateway_http.post(CHAT, json=body, headers=headers)
        calls += 1
    rows = usage_rows(gateway_server, calls)
    total = sum((r.cost for r in rows), Decimal(0))
    assert total > 0 and {r.status_code for r in rows} >= {200, 404, 502}
    assert {r.call_type for r in rows} >= {"embeddings"} and any(r.stream for r in rows)

    # Rollups equal the rows: in total and for every key and team.
    rolled = DailyUsage.objects.filter(kind="model_group").aggregate(
        c=Sum("cost"), n=Sum("requests")
    )
    assert (rolled["c"], rolled["n"]) == (total, len(rows))
    for kind, field in (
        ("key", "key_id"),
        ("team", "team_id"),
        ("organization", "organization_id"),
    ):
        by_rows: dict[str, Decimal] = defaultdict(Decimal)
        for r in rows:
            if getattr(r, field) is not None:
                by_rows[str(getattr(r, field))] += r.cost
        by_rollup = dict(
            DailyUsage.objects.filter(kind=kind).values_list("entity").annotate(c=Sum("cost"))
        )
        assert by_rollup == dict(by_rows), kind

    # Spend columns equal the rows, to the last digit.
    for key in VirtualKey.objects.all():
        assert key.spend == sum((r.cost for r in rows if r.key_id == key.pk), Decimal(0))
    for team in Team.objects.all():
        assert team.spend == sum((r.cost for r in rows if r.team_id == team.pk), Decimal(0))
    orgs[0].refresh_from_db()
    assert orgs[0].spend == sum(
        (r.cost for r in rows if r.organization_id == orgs[0].pk), Decimal(0)
    )
    assert orgs[0].spend > 0

    # /metrics counted the same calls, tokens and spend.
    after = _metric_totals(gateway_http)
    assert after["litellm_requests_metric_total"] - before["litellm_requests_metric_total"] == len(
        rows
    )
    assert after["litellm_total_tokens_metric_total"] - before[
        "litellm_total_tokens_metric_total"
    ] == sum(r.total_tokens for r in rows)
    assert after["litellm_spend_metric_total"] - before[
        "litellm_spend_metric_total"
    ] == pytest.approx(float(total), abs=1e-12)
    assert UsageLog.objects.count() == len(rows)
