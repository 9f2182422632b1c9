"""``/metrics`` counts what the usage rows hold: after a mixed run, its totals equal the rows'."""

from __future__ import annotations

from collections import defaultdict

import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.gateway.helpers import E2E, HELLO, usage_rows

pytestmark = E2E


def scrape(http) -> dict[str, float]:
    """Sample name -> sum over every label set."""
    response = http.get("/metrics")
    assert response.status_code == 200, response.text
    totals: dict[str, float] = defaultdict(float)
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            totals[sample.name] += sample.value
    return totals


def by_label(http, name: str, label: str) -> dict[str, float]:
    out: dict[str, float] = defaultdict(float)
    for family in text_string_to_metric_families(http.get("/metrics").text):
        for sample in family.samples:
            if sample.name == name:
                out[sample.labels[label]] += sample.value
    return out


def test_metrics_totals_equal_the_usage_rows_after_a_mixed_run(
    gateway_server, gateway_http, openai_upstream, openai_client, make_key
):
    openai_upstream("gpt", "gpt-4o-mini")
    openai_upstream("broken", "error-500")
    before = scrape(gateway_http)
    client = openai_client(make_key())
    for _ in range(3):
        client.chat.completions.create(model="gpt", messages=HELLO)
    for _ in range(2):
        list(
            client.chat.completions.create(
                model="gpt", messages=HELLO, stream=True, stream_options={"include_usage": True}
            )
        )
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="broken", messages=HELLO)
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="nope", messages=HELLO)
    rows = usage_rows(gateway_server, 7)
    after = scrape(gateway_http)

    def delta(name: str) -> float:
        return after[name] - before[name]

    assert delta("litellm_requests_metric_total") == len(rows)
    assert delta("litellm_proxy_failed_requests_metric_total") == sum(
        1 for r in rows if r.status_code >= 400
    )
    assert delta("litellm_input_tokens_metric_total") == sum(r.prompt_tokens for r in rows)
    assert delta("litellm_output_tokens_metric_total") == sum(r.completion_tokens for r in rows)
    assert delta("litellm_total_tokens_metric_total") == sum(r.total_tokens for r in rows)
    assert delta("litellm_spend_metric_total") == pytest.approx(
        float(sum(r.cost for r in rows)), abs=1e-12
    )
    assert delta("litellm_request_total_latency_metric_count") == len(rows)
    assert delta("litellm_llm_api_time_to_first_token_metric_count") == sum(
        1 for r in rows if r.ttft_ms is not None
    )
    assert after["litellm_in_flight_requests"] == 0


def test_metrics_show_remaining_team_and_key_budget(gateway_server, gateway_http):
    from decimal import Decimal

    from apps.keys.services import key_issue
    from apps.teams.models import Team

    team = Team.objects.create(team_alias="budgeted", max_budget=Decimal("10"))
    Team.objects.filter(pk=team.pk).update(spend=Decimal("2.5"))
    key, _ = key_issue(team=team, max_budget=Decimal("4"))
    teams = by_label(gateway_http, "litellm_remaining_team_budget_metric", "team_alias")
    assert teams["budgeted"] == 7.5
    keys = by_label(gateway_http, "litellm_remaining_api_key_budget_metric", "key")
    assert keys[str(key.pk)] == 4.0


def test_metrics_can_require_the_master_key(gateway_server, gateway_http, settings, make_key):
    settings.GATEWAY_METRICS_REQUIRE_AUTH = True
    refused = gateway_http.get("/metrics", headers={"Authorization": "Bearer " + make_key()})
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "invalid_api_key"
    assert gateway_http.get("/metrics", headers={"Authorization": ""}).status_code == 401
    assert gateway_http.get("/metrics").status_code == 200  # the master key
