"""Health endpoints: liveliness, readiness (database reachable) and per-deployment /health."""

from __future__ import annotations

import pytest

from tests.conftest import UPSTREAM_KEY
from tests.gateway.helpers import E2E, openai_error, usage_rows

pytestmark = E2E


@pytest.mark.parametrize("path", ["/health/liveliness", "/health/liveness"])
def test_liveliness_needs_nothing(gateway_http, path):
    response = gateway_http.get(path, headers={"authorization": ""})
    assert response.status_code == 200
    assert response.json() == "I'm alive!"


def test_readiness_reports_the_database(gateway_http):
    response = gateway_http.get("/health/readiness", headers={"authorization": ""})
    assert response.status_code == 200
    assert response.json() == {"status": "healthy", "db": "connected"}


def test_readiness_is_503_when_the_database_is_down(gateway_http, monkeypatch):
    from apps.gateway import info

    def down() -> bool:
        raise OSError("connection refused")

    monkeypatch.setattr(info, "_db_ok", down)
    response = gateway_http.get("/health/readiness")
    assert response.status_code == 503
    assert response.json() == {"status": "unhealthy", "db": "error"}


def test_health_checks_each_deployment(
    gateway_server, gateway_http, openai_upstream, make_deployment
):
    good = openai_upstream("gpt", "gpt-4o-mini")
    bad = openai_upstream("gpt", "error-500")
    refused = openai_upstream("broken", "echo-key-error")
    echo = make_deployment("echo", "mock", "echo-1")
    response = gateway_http.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert (body["healthy_count"], body["unhealthy_count"]) == (2, 2)
    healthy = {e["model_id"] for e in body["healthy_endpoints"]}
    assert healthy == {good.model_id, echo.model_id}
    errors = {e["model_id"]: e["error"] for e in body["unhealthy_endpoints"]}
    assert set(errors) == {bad.model_id, refused.model_id}
    assert "server had an error" in errors[bad.model_id]
    assert "Bad key" in errors[refused.model_id]
    assert UPSTREAM_KEY not in response.text
    assert "upstream-secret" not in response.text
    # Each probe is an upstream call and leaves its usage row, scrubbed like any other.
    rows = {r.deployment_id: r for r in usage_rows(gateway_server, 4)}
    assert {r.call_type for r in rows.values()} == {"health_check"}
    assert rows[good.model_id].status_code == 200
    assert rows[good.model_id].prompt_tokens > 0
    assert rows[bad.model_id].status_code >= 500
    assert rows[refused.model_id].status_code == 401
    assert all(UPSTREAM_KEY not in r.error_message for r in rows.values())
    assert all("upstream-secret" not in r.error_message for r in rows.values())


def test_health_is_for_the_master_key_only(gateway_http, openai_upstream, make_key):
    openai_upstream("gpt", "gpt-4o-mini")
    key = make_key()
    response = gateway_http.get("/health", headers={"authorization": f"Bearer {key}"})
    assert response.status_code == 403
    assert openai_error(response)["type"] == "permission_error"
    response = gateway_http.get("/health", headers={"authorization": ""})
    assert response.status_code == 401


def test_health_probe_times_out_per_deployment(gateway_http, openai_upstream):
    slow = openai_upstream("gpt", "slow-3000", timeout=0.3)
    body = gateway_http.get("/health").json()
    [entry] = body["unhealthy_endpoints"]
    assert entry["model_id"] == slow.model_id
    assert "timed out" in entry["error"]
